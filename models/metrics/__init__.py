"""The paper's metrics (SSIM, masked PSNR, LPIPS, FID, SSBS/SSIS, DPBS/DPIS) and the
evaluation protocol."""
