"""The one weight registry: what every downloadable file is, where it lives, how it is verified.

Files come from the Hugging Face Hub through ``huggingface_hub`` (its endpoint is taken from
``HF_ENDPOINT`` at call time, so a mirror or a test server can stand in). A downloaded file is
checked against its pinned sha256 before it is moved where loaders look, so a corrupt download
never lands there. Where no sha256 is pinned (a repo id typed by the user), the checksum the Hub
reports for that revision is used instead (the LFS sha256, or the git blob sha1 of small files).

Where files live, first match wins:

1. ``$DANCE_REENACT_MODELS`` if set (also where downloads go);
2. folders registered with :func:`add_search_root` (inside ComfyUI: ``models/dance_reenact``);
3. ``~/.cache/dance_reenact`` (or ``$XDG_CACHE_HOME/dance_reenact``).

A file pinned by sha256 (every registry file) is found under ``<root>/<local_name>``
(hand-placed files go there too): its bytes are checked, so a file of the same name from
elsewhere is refused, never used. An unpinned file (a repo typed by the user,
:func:`user_spec`) is cached under ``<root>/hub/<owner>/<name>/<revision>/<filename>``: two
repos holding a file of the same name never stand in for each other. Once present and
verified, nothing touches the network: the pack works offline.

Verification is cached in a stamp next to the file (size, mtime, ctime, inode: an in-place
edit changes the ctime even when size and mtime are put back). Files that run code when
loaded (TorchScript) are hashed again on every load.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

ENV_MODELS_DIR = "DANCE_REENACT_MODELS"
ENV_OFFLINE = "DANCE_REENACT_OFFLINE"
FOLDER_NAME = "dance_reenact"
WEIGHT_EXTENSIONS: tuple[str, ...] = (".safetensors", ".pth", ".pt", ".onnx", ".torchscript",
                                      ".bin", ".ckpt")


class WeightError(RuntimeError):
    """A weight file is missing, corrupt, of the wrong kind, or cannot be downloaded."""


@dataclass(frozen=True)
class WeightSpec:
    """One file on the Hub.

    Args:
        repo_id: ``owner/name`` on the Hub.
        filename: path of the file inside the repo.
        revision: a commit hash (preferred), branch or tag.
        sha256: hex digest of the file's bytes, or None to trust the Hub's reported checksum
            for ``revision``.
        license: licence as the repo tags it; NC ones are flagged in docs/weights.md.
        local_name: file name on disk (defaults to the basename of ``filename``).
        size: expected size in bytes where known.
        note: provenance or caveats shown in docs/weights.md.
        used_by: what loads the file, in a user's words (node and option, command and flag);
            docs/weights.md shows it (``python scripts/gen_docs.py`` writes that page).
    """

    repo_id: str
    filename: str
    revision: str
    sha256: str | None
    license: str
    local_name: str | None = None
    size: int | None = None
    note: str = ""
    used_by: str = ""

    @property
    def disk_name(self) -> str:
        return self.local_name or os.path.basename(self.filename)

    @property
    def url(self) -> str:
        """The direct download URL (``/resolve/``: the file's bytes, not its web page)."""
        return f"https://huggingface.co/{self.repo_id}/resolve/{self.revision}/{self.filename}"

    url_hint = url


def _spec(repo_id: str, filename: str, revision: str, sha256: str | None, license: str,
          **kw: object) -> WeightSpec:
    return WeightSpec(repo_id, filename, revision, sha256, license, **kw)  # type: ignore[arg-type]


# Pinned from ../shared/WEIGHTS.md. Where only a short commit was seen, the revision is "main"
# and the sha256 pins the bytes (a changed file on main then fails loudly, never silently).
REGISTRY: Mapping[str, WeightSpec] = {
    "openpose_body": _spec(
        "lllyasviel/Annotators", "body_pose_model.pth", "main",
        "25a948c16078b0f08e236bda51a385d855ef4c153598947c28c0d47ed94bb746", "other",
        size=209267595, note="OpenPose body (commit 733558a)",
        used_by="OpenPose node `backend` = `openpose`; `pose_backend` / `--pose-backend "
        "openpose` elsewhere"),
    "openpose_hand": _spec(
        "lllyasviel/Annotators", "hand_pose_model.pth", "main",
        "b76b00d1750901abd07b9f9d8c98cc3385b8fe834a26d4b4f0aad439e75fc600", "other",
        size=147341049, note="OpenPose hand (commit 733558a)",
        used_by="the `openpose` pose backend, with `detect_hands`"),
    "openpose_face": _spec(
        "lllyasviel/Annotators", "facenet.pth", "03b402ee1c5b016b1fb4161ef40814894936bb4d",
        "8beb52e548624ffcc4aed12af7aee7dcbfaeea420c75609fee999fe7add79d43", "other",
        size=153718792, note="OpenPose face",
        used_by="the `openpose` pose backend, with `detect_face`"),
    "dwpose_wholebody": _spec(
        "yzd-v/DWPose", "dw-ll_ucoco_384.onnx", "f7c16a3d45ad3783db41471848c80fbc281cabac",
        "724f4ff2439ed61afb86fb8a1951ec39c6220682803b4a8bd4f598cd913b1843", "apache-2.0",
        size=134399116, note="DWPose whole-body ONNX",
        used_by="OpenPose node `backend` = `dwpose`; `pose_backend` / `--pose-backend dwpose` "
        "elsewhere"),
    "dwpose_detector": _spec(
        "yzd-v/DWPose", "yolox_l.onnx", "f7c16a3d45ad3783db41471848c80fbc281cabac",
        "7860ae79de6c89a3c1eb72ae9a2756c0ccfbe04b7791bb5880afabd97855a411", "apache-2.0",
        size=216746733, note="YOLOX-L person detector ONNX",
        used_by="the `dwpose` pose backend (person boxes)"),
    "densepose_r50": _spec(
        "LayerNorm/DensePose-TorchScript-with-hint-image", "densepose_r50_fpn_dl.torchscript",
        "779f2015fc24435eee3ff8da3e8706d610a6b935",
        "4f7260daa498ce8d4b4679f0692ef2f1f426e39121a907181eab37b8b0585878", "apache-2.0",
        note="TorchScript runs code when loaded: pinned by sha256",
        used_by="DensePose node `backend` = `densepose_r50`; `reenact prepare` / `reenact "
        "evaluate --densepose-backend densepose_r50`"),
    "schp_lip_onnx": _spec(
        "levihsu/OOTDiffusion", "checkpoints/humanparsing/parsing_lip.onnx",
        "360d3932a7f0fc68396bdc9d604a28fd5998e5c0",
        "8436e1dae96e2601c373d1ace29c8f0978b16357d9038c17a8ba756cca376dbc", "cc-by-nc-sa-4.0",
        size=266863411, note="SCHP-LIP ONNX, non-commercial",
        used_by="Human Parse `backend` = `schp_lip_onnx`; `reenact --parse-backend "
        "schp_lip_onnx`"),
    "schp_lip": _spec(
        "levihsu/OOTDiffusion", "checkpoints/humanparsing/exp-schp-201908261155-lip.pth", "main",
        "24fa3254ceeb74c8435458994a64b522fb439a3635b7b86ff470457e0413da00", "cc-by-nc-sa-4.0",
        size=267449349, note="SCHP LIP ResNet-101 (commit e84c163; hash seen on mirrors), "
        "non-commercial",
        used_by="Human Parse `backend` = `schp_lip`; `reenact --parse-backend schp_lip`"),
    "big_lama": _spec(
        "fofr/comfyui", "inpaint/big-lama.pt", "189692800e185a5e2807b89a55ce134ee1d1d5d1",
        "344c77bbcb158f17dd143070d1e789f38a66c04202311ae3a258ef66667a9ea9", "none shown",
        size=205669692, note="big-LaMa TorchScript; runs code when loaded: pinned by sha256",
        used_by="Inpaint `backend` = `lama`; `reenact --inpaint lama`"),
    "vgg19": _spec(
        "timm/vgg19.tv_in1k", "model.safetensors", "128d4708565b3a414bcbb9bbad440b2fe37b9f18",
        "11aea017b543ff59233749d8f1cf544cda749378f5790d2fedab841fb86b7669", "bsd-3-clause",
        local_name="vgg19.tv_in1k.safetensors", note="ImageNet VGG19 (timm key names)",
        used_by="Appearance Encoder `backend` = `pretrained` (body crops); `reenact train b2f` "
        "perceptual loss"),
    "vgg16": _spec(
        "timm/vgg16.tv_in1k", "model.safetensors", "3394518cba29aee1ea82a49d971be90d2dd1dab7",
        "57b026918159a6bf9faf8405c3a551903768e7138989d9c6224a14227203fad8", "bsd-3-clause",
        local_name="vgg16.tv_in1k.safetensors", note="ImageNet VGG16 (timm key names)",
        used_by="LPIPS `vgg` backbone (Image Metrics, `reenact evaluate --lpips vgg`); `reenact "
        "train face --perceptual vgg16`"),
    "facenet_vggface2": _spec(
        "py-feat/facenet", "facenet_20180402_114759_vggface2.pth",
        "8dd79278b755ee24ee9922619122df8a2b80b787",
        "281cebca8662831adb987a874bdcb36e73f5b1c6dc5ee5878f305e985625d99b",
        "mit (VGGFace2 data terms separate)", size=111898327,
        note="InceptionResnetV1 face embedding",
        used_by="Appearance Encoder `backend` = `pretrained` (face crop); face losses of "
        "`reenact train b2f` and `reenact train face`"),
    "fan68": _spec(
        "bluefoxcreation/FaceAlignment", "fan2_68_landmark.onnx",
        "ad57a6b8f2666227041f9056dbecb00c16860802",
        "8404d6d0c1b8032faed63ab1100ced7c33e08009a0dff237b127f61fc336bda0", "none shown",
        size=50858509, note="FAN 68-point landmarks ONNX",
        used_by="Load FaceRefine `landmarks` = `fan68`"),
    "fid_inception": _spec(
        "RaphaelLiu/EvalCrafter-Models", "pt_inception-2015-12-05-6726825d.pth",
        "6040b4d40fdcde446a0cf753b0527585b6b77c54",
        "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2", "none shown",
        size=95628359, note="pytorch-fid Inception; this revision (a later one replaced it)",
        used_by="FID: Image Metrics, `reenact evaluate --fid` / `--protocol`"),
    "lpips_alex": _spec(
        "chaofengc/IQA-PyTorch-Weights", "LPIPS_v0.1_alex-df73285e.pth", "main",
        "df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0",
        "cc-by-nc-sa-4.0 (upstream LPIPS BSD-2)", size=6009, note="LPIPS linear heads",
        used_by="LPIPS `alex` head: Image Metrics, `reenact evaluate --lpips alex` (backbone not "
        "in the registry)"),
    "lpips_vgg": _spec(
        "chaofengc/IQA-PyTorch-Weights", "LPIPS_v0.1_vgg-a78928a0.pth",
        "70fc812e916660523ae6712dabffdcd4e469ff51",
        "a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868",
        "cc-by-nc-sa-4.0 (upstream LPIPS BSD-2)", size=7289, note="LPIPS linear heads",
        used_by="LPIPS `vgg` head: Image Metrics, `reenact evaluate --lpips vgg` / `--protocol`"),
    "lpips_squeeze": _spec(
        "chaofengc/IQA-PyTorch-Weights", "LPIPS_v0.1_squeeze-4a5350f2.pth",
        "a387e71f0a574ca0359678e94df158ced4c54866",
        "4a5350f23600cb79923ce65bb07cbf57dca461329894153e05a1346bd531cf76",
        "cc-by-nc-sa-4.0 (upstream LPIPS BSD-2)", size=10811, note="LPIPS linear heads",
        used_by="LPIPS `squeeze` head: Image Metrics, `reenact evaluate --lpips squeeze` "
        "(backbone not in the registry)"),
}

_extra_roots: list[Path] = []


def add_search_root(path: str | os.PathLike[str]) -> None:
    """Register a folder where weights are looked for (and downloaded, if it is the first)."""
    p = Path(path)
    if p not in _extra_roots:
        _extra_roots.append(p)


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / FOLDER_NAME


def search_roots() -> list[Path]:
    """Folders searched for weight files, in order; the first is where downloads go."""
    roots: list[Path] = []
    env = os.environ.get(ENV_MODELS_DIR)
    if env:
        roots.append(Path(env))
    roots.extend(_extra_roots)
    roots.append(default_cache_dir())
    seen: list[Path] = []
    for r in roots:
        if r not in seen:
            seen.append(r)
    return seen


def is_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` or ``DANCE_REENACT_OFFLINE`` is set to a true value."""
    def true(v: str | None) -> bool:
        return (v or "").strip().lower() in {"1", "true", "yes", "on"}
    return true(os.environ.get("HF_HUB_OFFLINE")) or true(os.environ.get(ENV_OFFLINE))


PROBE_TIMEOUT_S = 1.5  # one short request says whether the Hub answers (the error in < 2 s)
PROBE_TTL_S = 60.0
_probes: dict[str, tuple[float, str | None]] = {}


def hub_endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")


def hub_unavailable(timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """Why nothing can be downloaded now, or None when the Hub answers.

    Offline mode answers at once; otherwise one HEAD request to the endpoint with a short
    timeout (any HTTP answer, even an error status, means the Hub is reachable), remembered
    per endpoint for a minute. Without it, ``huggingface_hub`` retries an unreachable Hub for
    ~24 s per file before failing.
    """
    if is_offline():
        return f"offline mode is on (HF_HUB_OFFLINE / {ENV_OFFLINE})"
    import urllib.error
    import urllib.request

    endpoint = hub_endpoint()
    now = time.monotonic()
    hit = _probes.get(endpoint)
    if hit is not None and now - hit[0] < PROBE_TTL_S:
        return hit[1]
    reason: str | None = None
    try:
        req = urllib.request.Request(endpoint + "/", method="HEAD")
        with urllib.request.urlopen(req, timeout=timeout):  # noqa: S310 - http(s) endpoint
            pass
    except urllib.error.HTTPError:
        reason = None  # it answered
    except (TimeoutError, urllib.error.URLError, OSError, ValueError) as exc:
        why = getattr(exc, "reason", exc)
        reason = f"the Hub at {endpoint} did not answer within {timeout:g} s ({why})"
    _probes[endpoint] = (now, reason)
    return reason


def spec_for(name_or_spec: str | WeightSpec) -> WeightSpec:
    if isinstance(name_or_spec, WeightSpec):
        return name_or_spec
    if name_or_spec not in REGISTRY:
        raise WeightError(f"unknown weight {name_or_spec!r}; registered: {', '.join(REGISTRY)}")
    return REGISTRY[name_or_spec]


def user_spec(repo_id: str, filename: str, revision: str = "main",
              sha256: str | None = None) -> WeightSpec:
    """A spec for a repo id / filename typed by a user (their own trained P2B/B2F weights)."""
    repo_id, filename = repo_id.strip(), filename.strip()
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise WeightError(f"repo id {repo_id!r} must look like 'owner/name'")
    if not filename or filename.startswith("/") or ".." in filename.split("/"):
        raise WeightError(f"filename {filename!r} must be a path inside the repo")
    return WeightSpec(repo_id, filename, revision.strip() or "main",
                      sha256.strip().lower() if sha256 else None, "user supplied")


# --------------------------------------------------------------------------------------------
# hashing
# --------------------------------------------------------------------------------------------

def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def git_blob_sha1(path: str | os.PathLike[str]) -> str:
    """The git object id of a file (what the Hub reports as ETag for non-LFS files)."""
    size = os.path.getsize(path)
    h = hashlib.sha1(f"blob {size}\0".encode())
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            h.update(block)
    return h.hexdigest()


# Loaded as code (torch.jit.load): a stamp is not enough, the bytes are hashed on every load.
CODE_EXTENSIONS: tuple[str, ...] = (".pt", ".torchscript", ".jit", ".ckpt")


def _stamp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.verified.json")


def _stat_key(st: os.stat_result) -> dict[str, int]:
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns,
            "ino": st.st_ino}


def _verified_stamp_ok(path: Path, digest: str) -> bool:
    stamp = _stamp_path(path)
    try:
        data = json.loads(stamp.read_text())
        return data.get("sha256") == digest and all(
            data.get(k) == v for k, v in _stat_key(path.stat()).items())
    except (OSError, ValueError, AttributeError):
        return False


def _write_stamp(path: Path, digest: str) -> None:
    try:
        _stamp_path(path).write_text(json.dumps({"sha256": digest,
                                                 **_stat_key(path.stat())}))
    except OSError:  # read-only models folder: we simply hash again next time
        logger.debug("could not write verification stamp next to %s", path)


def verify_file(path: Path, spec: WeightSpec) -> None:
    """Check a present file against the spec's sha256 (cached by a stamp of size, mtime,
    ctime and inode; files that run code when loaded are hashed every time).

    Raises:
        WeightError naming the file, both digests and what to do.
    """
    if spec.sha256 is None:
        return
    if not path.name.endswith(CODE_EXTENSIONS) and _verified_stamp_ok(path, spec.sha256):
        return
    digest = sha256_file(path)
    if digest != spec.sha256:
        size = path.stat().st_size
        expected = f" ({spec.size} bytes expected)" if spec.size else ""
        raise WeightError(
            f"{path} is not the expected {spec.repo_id}/{spec.filename}: sha256 {digest} "
            f"({size} bytes) but expected {spec.sha256}{expected}. The file is truncated, "
            f"corrupt or another version. Delete it and run again to re-download, or place "
            f"the right file there by hand (from {spec.url_hint}).")
    _write_stamp(path, digest)


# --------------------------------------------------------------------------------------------
# resolving and downloading
# --------------------------------------------------------------------------------------------

def _safe_part(part: str, what: str) -> str:
    part = part.replace("/", "--")
    if part in ("", ".", "..") or "\\" in part or "\0" in part:
        raise WeightError(f"{what} {part!r} cannot name a cache folder")
    return part


def cache_path(spec: WeightSpec, root: Path | None = None) -> Path:
    """Where a spec's file lives in ``root``: ``<root>/<local_name>`` when a sha256 pins its
    bytes, else ``<root>/hub/<owner>/<name>/<revision>/<file>`` (keyed by where it came
    from, since nothing else tells two files of the same name apart)."""
    root = root or search_roots()[0]
    if spec.sha256 is not None:
        return root / spec.disk_name
    owner, _, name = spec.repo_id.partition("/")
    parts = [p for p in spec.filename.split("/") if p]
    if not parts or any(p in (".", "..") for p in parts):
        raise WeightError(f"filename {spec.filename!r} must be a path inside the repo")
    return root.joinpath("hub", _safe_part(owner, "repo owner"), _safe_part(name, "repo name"),
                         _safe_part(spec.revision, "revision"), *parts)


def _find_for(spec: WeightSpec) -> Path | None:
    """The local copy :func:`resolve` may use for ``spec``: the first :func:`cache_path` over
    the roots. A hand-placed ``<root>/<basename>`` is not used for an unpinned spec: it could
    be any repo's file of that name (pin a sha256 to use it)."""
    for root in search_roots():
        candidate = cache_path(spec, root)
        if candidate.is_file():
            return candidate
    placed = find_local(spec) if spec.sha256 is None else None
    if placed is not None:
        logger.info("not using %s for %s/%s@%s: nothing says it came from there (pin its "
                    "sha256 to use it)", placed, spec.repo_id, spec.filename, spec.revision)
    return None


def find_local(spec: WeightSpec) -> Path | None:
    """The first existing ``<root>/<disk_name>`` over :func:`search_roots`, or None."""
    for root in search_roots():
        candidate = root / spec.disk_name
        if candidate.is_file():
            return candidate
    return None


def find_file(name: str) -> Path | None:
    """A weight file picked by name in a loader: the first ``<root>/<name>`` over
    :func:`search_roots` (an absolute path is accepted when it lies in one of them).

    A name that leads outside every root (``../``, a symlink out, an absolute path
    elsewhere) is refused with a WeightError: a widget value comes from the API too, not only
    from the dropdown.
    """
    if not name or "\0" in name:
        return None
    roots = [r.resolve() for r in search_roots()]
    candidates = [Path(name)] if Path(name).is_absolute() else [r / name for r in roots]
    outside: Path | None = None
    for candidate in candidates:
        real = candidate.resolve()
        if not any(real == r or real.is_relative_to(r) for r in roots):
            outside = real
            continue
        if real.is_file():
            return real
    if outside is not None:
        raise WeightError(f"{name!r} leads to {outside}, outside the models folders "
                          f"({', '.join(map(str, roots))}); only files in them can be loaded")
    return None


def list_local_files(extensions: Iterable[str] = WEIGHT_EXTENSIONS) -> list[str]:
    """Names of weight files present in the search roots (for loader dropdowns)."""
    exts = tuple(extensions)
    names: list[str] = []
    for root in search_roots():
        if not root.is_dir():
            continue
        for p in sorted(root.iterdir()):
            if p.is_file() and p.name.endswith(exts) and p.name not in names:
                names.append(p.name)
    return names


def _missing_message(spec: WeightSpec, reason: str) -> str:
    target = cache_path(spec)
    return (f"weight file {spec.repo_id}/{spec.filename} (revision {spec.revision}) is not "
            f"available: {reason}. Expected it at {target}. Either allow network access to "
            f"the Hugging Face Hub (unset HF_HUB_OFFLINE / {ENV_OFFLINE}, or set HF_ENDPOINT "
            f"to a mirror), or download {spec.url} yourself and place it at that path "
            f"(any folder in {ENV_MODELS_DIR} or ComfyUI's models/{FOLDER_NAME} works).")


def _hub_checksum(spec: WeightSpec, endpoint: str | None) -> tuple[str, str]:
    """What the Hub reports for the file at the revision: ('sha256'|'sha1', hexdigest)."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    url = hf_hub_url(spec.repo_id, spec.filename, revision=spec.revision, endpoint=endpoint)
    meta = get_hf_file_metadata(url)
    etag = (meta.etag or "").strip('"').lower()
    if len(etag) == 64 and all(c in "0123456789abcdef" for c in etag):
        return "sha256", etag
    if len(etag) == 40 and all(c in "0123456789abcdef" for c in etag):
        return "sha1", etag
    raise WeightError(f"the Hub reported no usable checksum for {spec.repo_id}/{spec.filename} "
                      f"at {spec.revision} (etag {meta.etag!r}); pin a sha256 for it")


_OWNER = ".owner-pid"
STALE_AFTER_S = 3600.0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def clean_stale_downloads(root: Path) -> list[Path]:
    """Remove ``.incoming-*`` folders a killed download left in ``root``: those whose owner
    process is gone, or (no owner recorded) untouched for an hour. Returns what was removed."""
    removed: list[Path] = []
    try:
        entries = [p for p in root.iterdir() if p.name.startswith(".incoming-") and p.is_dir()]
    except OSError:
        return removed
    for folder in entries:
        try:
            pid = int((folder / _OWNER).read_text().strip())
            stale = pid != os.getpid() and not _alive(pid)
        except (OSError, ValueError):
            stale = time.time() - folder.stat().st_mtime > STALE_AFTER_S
        if stale:
            shutil.rmtree(folder, ignore_errors=True)
            logger.info("removed %s, left by an interrupted download", folder)
            removed.append(folder)
    return removed


def download(spec: WeightSpec, root: Path | None = None) -> Path:
    """Download ``spec`` into ``root`` (default: the first search root), verified.

    The file is fetched into a temporary folder next to its destination and only moved into
    place once its checksum matches, so a failed or corrupt download leaves nothing behind.
    """
    from huggingface_hub import hf_hub_download

    root = root or search_roots()[0]
    root.mkdir(parents=True, exist_ok=True)
    clean_stale_downloads(root)
    endpoint = os.environ.get("HF_ENDPOINT") or None
    expected = spec.sha256
    kind = "sha256"
    if expected is None:
        kind, expected = _hub_checksum(spec, endpoint)
    tmp = Path(tempfile.mkdtemp(prefix=".incoming-", dir=root))
    (tmp / _OWNER).write_text(f"{os.getpid()}")
    try:
        logger.info("downloading %s/%s@%s", spec.repo_id, spec.filename, spec.revision)
        fetched = Path(hf_hub_download(spec.repo_id, spec.filename, revision=spec.revision,
                                       local_dir=tmp, endpoint=endpoint))
        digest = sha256_file(fetched) if kind == "sha256" else git_blob_sha1(fetched)
        if digest != expected:
            raise WeightError(
                f"download of {spec.repo_id}/{spec.filename}@{spec.revision} is corrupt: "
                f"{kind} {digest}, expected {expected}; it was discarded. Try again, or "
                f"download {spec.url} yourself and place it at {cache_path(spec, root)}.")
        dest = cache_path(spec, root)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(fetched, dest)
        if kind == "sha256":
            _write_stamp(dest, digest)
        return dest
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def resolve(name_or_spec: str | WeightSpec, *, allow_download: bool = True) -> Path:
    """Path of a verified local copy of a weight file, downloading it if needed and allowed.

    Raises:
        WeightError: missing and offline, the download failed, or the file is corrupt; the
            message names the repo, file, expected path and how to place it by hand.
    """
    spec = spec_for(name_or_spec)
    local = _find_for(spec)
    if local is not None:
        verify_file(local, spec)
        return local
    if not allow_download:
        raise WeightError(_missing_message(spec, "downloads are disabled for this call"))
    if is_offline():
        raise WeightError(_missing_message(spec, "offline mode is on and it is not on disk"))
    unavailable = hub_unavailable()
    if unavailable:
        raise WeightError(_missing_message(spec, f"the download failed: {unavailable}"))
    try:
        return download(spec)
    except WeightError:
        raise
    except Exception as exc:  # network, 404, permissions: one clear message
        raise WeightError(_missing_message(
            spec, f"the download failed ({type(exc).__name__}: {str(exc)[:300]})")) from exc

