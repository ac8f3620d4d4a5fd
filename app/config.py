"""Service settings, read from FACEREC_* environment variables (and a .env file)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

VGGFACE2_WEIGHTS_URL = (
    "https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/20180402-114759-vggface2.pt"
)
VGGFACE2_WEIGHTS_SHA256 = "281cebca8662831adb987a874bdcb36e73f5b1c6dc5ee5878f305e985625d99b"
VGGFACE2_WEIGHTS_FILENAME = "20180402-114759-vggface2.pt"
VGGFACE2_MODEL_ID = "facenet-vggface2-20180402"


def _default_data_dir() -> Path:
    return platformdirs.user_data_path("facerec")


def _default_model_dir() -> Path:
    return platformdirs.user_cache_path("facerec") / "models"


class Settings(BaseSettings):
    """Every setting the service reads; the README's configuration table mirrors this class."""

    model_config = SettingsConfigDict(env_prefix="FACEREC_", env_file=".env", extra="ignore", protected_namespaces=())

    # Database
    database_url: str | None = Field(
        default=None,
        description="Postgres (>= 14, with pgvector) URL. Unset: start the embedded Postgres.",
    )
    data_dir: Path = Field(
        default_factory=_default_data_dir,
        description="Where the embedded Postgres keeps its data (only when database_url is unset).",
    )
    embedded_db_port: int = Field(
        default=0, ge=0, le=65535, description="Loopback port of the embedded Postgres; 0 picks a free one."
    )
    migrate_on_start: bool = Field(
        default=True, description="Run the schema migrations at start-up (under an advisory lock)."
    )
    db_pool_size: int = Field(default=5, ge=1, description="Connections kept open per process.")
    db_max_overflow: int = Field(default=5, ge=0, description="Extra connections under burst load.")
    db_connect_timeout_s: float = Field(default=5.0, gt=0, description="Per-connection timeout.")
    db_statement_timeout_s: float = Field(
        default=10.0, gt=0, description="Longest a single SQL statement may run before Postgres cancels it."
    )
    hnsw_ef_search: int = Field(
        default=64,
        ge=1,
        le=1000,
        description="pgvector hnsw.ef_search, as given: candidates the HNSW scan keeps; higher is more exact, slower.",
    )
    hnsw_m: int = Field(
        default=24,
        ge=2,
        le=100,
        description="HNSW graph degree: set by `facerec db upgrade` on an empty gallery, else `facerec db reindex`.",
    )
    hnsw_ef_construction: int = Field(
        default=100,
        ge=4,
        le=1000,
        description="HNSW build-time candidate list, at least 2 x FACEREC_HNSW_M; applied like FACEREC_HNSW_M.",
    )

    # Model
    weights_path: Path | None = Field(
        default=None, description="InceptionResnetV1 VGGFace2 weights file; overrides model_dir."
    )
    model_dir: Path = Field(
        default_factory=_default_model_dir, description="Directory searched for (and downloaded to) weights."
    )
    weights_sha256: str = Field(
        default=VGGFACE2_WEIGHTS_SHA256,
        pattern=r"^[0-9a-fA-F]{64}$",
        description="Expected SHA-256 of the weights file; set it when you bring your own weights.",
    )
    weights_url: str = Field(
        default=VGGFACE2_WEIGHTS_URL, pattern=r"^https?://", description="Where weights are downloaded from."
    )
    allow_download: bool = Field(default=True, description="Download missing weights at start-up (needs network).")
    model_id: str = Field(
        default=VGGFACE2_MODEL_ID,
        min_length=1,
        max_length=100,
        description="Label stored with every face; identify compares only faces of the same model.",
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        default="auto", description="Inference device: auto uses CUDA when available."
    )
    torch_threads: int = Field(
        default=0,
        ge=0,
        description="Threads each model call uses (torch and ONNX Runtime); 0 = cores / FACEREC_INFERENCE_WORKERS.",
    )
    embedding_backend: Literal["auto", "torch", "onnx"] = Field(
        default="auto",
        description="What embeds faces: auto = ONNX Runtime on CPU (every core, or FACEREC_TORCH_THREADS), "
        "torch on CUDA; auto falls back to torch if the export fails, and /readyz says so. Exports are cached in "
        "model_dir/onnx.",
    )
    embedding_precision: Literal["fp32", "int8"] = Field(
        default="fp32",
        description="int8: the embedder quantized by `facerec models quantize DIR` on your face photos, about 3x "
        "faster on CPUs with VNNI/AMX; opt-in, as its accuracy with the real weights is yours to check.",
    )
    detector_backend: Literal["auto", "torch", "onnx"] = Field(
        default="auto",
        description="What runs MTCNN: auto = ONNX Runtime on CPU (same faces as torch, about twice as fast), "
        "torch on CUDA; auto falls back to torch if the export fails, and /readyz says so.",
    )
    inference_workers: int = Field(
        default=0, ge=0, le=64, description="Model calls run at once (threads); 0 = one per core."
    )
    embed_max_batch: int = Field(
        default=16, ge=1, le=256, description="Most faces, from concurrent requests, embedded in one model call."
    )
    embed_batch_window_ms: float = Field(
        default=0.0, ge=0, le=100, description="Extra wait for more faces to batch; 0 batches only what is queued."
    )
    max_pending_inferences: int = Field(
        default=64, ge=1, description="Images admitted to the inference queue; more get 503 OVERLOADED."
    )

    request_deadline_s: float = Field(
        default=30.0, gt=0, description="Longest an image may wait for and run through the model; then 503."
    )

    # Recognition policy
    match_threshold: float = Field(
        default=0.5,
        ge=-1.0,
        le=1.0,
        description="Cosine similarity at or above which identify names a match and verify says same person; "
        "a collection's own threshold (PATCH /collections/{name}) overrides it.",
    )
    min_face_px: int = Field(
        default=40, ge=1, description="Enrolment quality gate: smallest accepted face side, in pixels."
    )
    min_detection_probability: float = Field(
        default=0.95, ge=0.0, le=1.0, description="Enrolment quality gate: smallest detection probability."
    )
    quality_min_sharpness: float = Field(
        default=4.0,
        ge=0.0,
        description="Enrolment quality gate: smallest variance of the Laplacian of the grey 160x160 crop (blur).",
    )
    quality_max_roll_degrees: float = Field(
        default=35.0, ge=0.0, le=180.0, description="Enrolment quality gate: largest tilt of the eye line, degrees."
    )
    quality_max_yaw_offset: float = Field(
        default=1.3,
        ge=0.0,
        description="Enrolment quality gate: largest offset of the nose from the eyes' midpoint, in half eye "
        "distances (0 frontal, about 1 in profile).",
    )
    quality_min_brightness: float = Field(
        default=40.0, ge=0.0, le=255.0, description="Enrolment quality gate: darkest mean grey level of the crop."
    )
    quality_max_brightness: float = Field(
        default=220.0, ge=0.0, le=255.0, description="Enrolment quality gate: brightest mean grey level of the crop."
    )
    quality_max_clipped_fraction: float = Field(
        default=0.25,
        ge=0.0,
        le=1.0,
        description="Enrolment quality gate: largest share of crop pixels lost to black (<= 5) or white (>= 250).",
    )
    bystander_max_width_ratio: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="Enrolment ignores faces narrower than this fraction of the main face's width (bystanders).",
    )
    enroll_conflict_check: bool = Field(
        default=True,
        description="Refuse (409) an enrolment whose face matches another subject of the collection at or above the "
        "threshold, unless the request sends on_conflict=allow.",
    )
    detector_min_face_px: int = Field(
        default=40,
        ge=12,
        description="Smallest face MTCNN looks for, in pixels of the detection image (at most "
        "FACEREC_DETECT_MAX_SIDE wide); detection time grows as its inverse square.",
    )
    detect_max_side: int = Field(
        default=800,
        ge=160,
        description="Longest side images are downscaled to before detection; boxes stay in original pixels.",
    )
    default_top_k: int = Field(default=3, ge=1, le=100, description="Candidates per face in identify.")
    default_max_faces: int = Field(default=10, ge=1, le=100, description="Faces identified per image.")

    # Uploads
    max_image_bytes: int = Field(default=8 * 1024 * 1024, ge=1024, description="Largest accepted image file.")
    max_image_pixels: int = Field(default=40_000_000, ge=1, description="Largest accepted width x height.")
    min_image_side: int = Field(default=32, ge=1, description="Smallest accepted image width or height.")
    max_request_bytes: int = Field(
        default=17 * 1024 * 1024,
        ge=1024,
        description="Largest accepted request body (two images plus form fields for /verify); else 413.",
    )
    max_form_fields: int = Field(default=16, ge=1, description="Most non-file form fields in one request.")
    max_form_files: int = Field(default=2, ge=1, description="Most files in one request.")
    max_form_field_bytes: int = Field(default=65536, ge=1024, description="Largest non-file form field.")

    # Access control and privacy
    auth_enabled: bool = Field(
        default=True,
        description="Require API keys. false is for local development only; the service warns loudly at start.",
    )
    rate_limit_detect_per_minute: int = Field(default=600, ge=0, description="Per key; 0 = unlimited.")
    rate_limit_verify_per_minute: int = Field(default=600, ge=0, description="Per key; 0 = unlimited.")
    rate_limit_identify_per_minute: int = Field(
        default=300, ge=0, description="Per key; 1:N search is stricter than 1:1 verify. 0 = unlimited."
    )
    rate_limit_enroll_per_minute: int = Field(default=300, ge=0, description="Per key; 0 = unlimited.")
    rate_limit_manage_per_minute: int = Field(default=600, ge=0, description="Per key; 0 = unlimited.")
    rate_limit_admin_per_minute: int = Field(default=120, ge=0, description="Per key; 0 = unlimited.")
    retention_check_interval_s: float = Field(
        default=3600.0,
        gt=0,
        description="How often expired faces (per-collection retention) are purged, and idle rate-limit rows deleted.",
    )
    cors_origins: list[str] = Field(
        default_factory=list, description='Origins allowed by CORS, as a JSON list (e.g. ["https://app.example"]).'
    )

    # Server
    host: str = Field(default="127.0.0.1", description="Bind address of `facerec serve`.")
    port: int = Field(default=8000, ge=0, le=65535, description="Port of `facerec serve`.")
    log_level: Literal["debug", "info", "warning", "error"] = Field(default="info", description="Log level.")

    # Observability
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="json: each log line of `facerec serve` (uvicorn's too) is one JSON object with time, level, "
        "logger, message and the request id.",
    )
    metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Also serve the Prometheus metrics, without a key, on this port of FACEREC_HOST. Unset: only "
        "GET /metrics on the main port, with a key holding the metrics scope.",
    )
    metrics_gallery_refresh_s: float = Field(
        default=30.0,
        ge=0,
        description="Faces and subjects per collection in the metrics are counted (one grouped query) at most this "
        "often; scrapes in between get the last counts.",
    )

    @model_validator(mode="after")
    def _lowercase_hash(self) -> Settings:
        self.weights_sha256 = self.weights_sha256.lower()
        return self

    @model_validator(mode="after")
    def _brightness_range_is_a_range(self) -> Settings:
        if self.quality_min_brightness > self.quality_max_brightness:
            raise ValueError("FACEREC_QUALITY_MIN_BRIGHTNESS must not exceed FACEREC_QUALITY_MAX_BRIGHTNESS")
        return self

    @model_validator(mode="after")
    def _hnsw_options_fit_pgvector(self) -> Settings:
        if self.hnsw_ef_construction < 2 * self.hnsw_m:
            raise ValueError("FACEREC_HNSW_EF_CONSTRUCTION must be at least 2 x FACEREC_HNSW_M (a pgvector rule)")
        return self

    @model_validator(mode="after")
    def _metrics_port_is_another_port(self) -> Settings:
        if self.metrics_port is not None and self.metrics_port == self.port:
            raise ValueError("FACEREC_METRICS_PORT must differ from FACEREC_PORT (the API's port)")
        return self

    @property
    def embedded_pgdata(self) -> Path:
        return self.data_dir / "pgdata"
