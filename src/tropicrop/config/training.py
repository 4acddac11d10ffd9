"""The training configuration (``tropicrop train -c``, an experiment's ``train`` section), one schema a section.

Two modes (paper, section 4.2): ``per-month`` trains one network per labelled target date (the Baselines),
``all-months`` one network with a different target date per mini-batch (VUnetConvLSTM). Checks that need
the data (a target date that is not labelled, a patch larger than the scene) are made when the data is read.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import BeforeValidator, Field, model_validator

from tropicrop.config.models import check_model_name, check_model_options, is_network
from tropicrop.config.schema import ConfigDate, Section, Text, problem

Mode = Literal["per-month", "all-months"]
MODES: tuple[str, ...] = get_args(Mode)
ALL_MONTHS: Mode = "all-months"
Use = Literal["train", "all"]
"""Which labelled pixels a run learns from: ``train`` (split == 1) or ``all`` (paper: every LEM 17/18 polygon)."""
TestInputs = Literal["exclude", "context"]
"""exclude: no test pixel in a training patch; context: test-area images may be input (labels stay masked)."""
Precision = Literal["auto", "32", "bf16", "16", "transformer-engine", "transformer-engine-float16", "16-true",
                    "16-mixed", "bf16-true", "bf16-mixed", "32-true", "64-true"]
"""``auto`` (bf16-mixed where the hardware has fast bf16, else 32-true), the short names of
:mod:`tropicrop.precision` and Lightning's own names."""
PrecisionText = Annotated[Precision, BeforeValidator(lambda v: str(v).lower() if isinstance(v, str | int) else v)]
Accelerator = Literal["auto", "cpu", "gpu", "cuda", "mps", "tpu"]
SceneList = Annotated[list[Text], Field(min_length=1)]


class DataConfig(Section):
    """Where training samples come from and how they are cut."""

    scene: Text | SceneList = Field("data/tiny/lem1920", description="scene folder, or a list of them (relative to "
                                    "the working directory)")
    use: Use = Field("train", description="train: split == 1 pixels only; all: every labelled pixel")
    targets: list[ConfigDate] | None = Field(None, description="target dates (YYYY-MM-DD); default every labelled date")
    sequence_length: int = Field(12, ge=1, description="acquisitions in a window (12 months)")
    patch_size: int = Field(32, ge=1, description="side of a training patch, pixels")
    stride: int = Field(16, ge=1, description="step between patch origins, pixels")
    min_labelled: float = Field(0.05, ge=0, le=1, description="fraction of a patch's pixels that must be labelled")
    sampling: Literal["grid", "labels"] = Field("grid", description="grid: patch origins every stride pixels; labels: "
                                                "one patch per stride cell holding labels, centred on a labelled pixel")
    test_inputs: TestInputs = Field("exclude", description="exclude: no test pixel in a training patch; context: "
                                    "test-area images as input (labels stay masked)")
    val_fraction: float = Field(0.15, ge=0, lt=1, description="share of patches held out for validation")
    val_block: int = Field(0, ge=0, description="side (px) of the blocks validation is drawn by; 0 = the patch size")
    val_split: Literal["blocks", "fields"] = Field("blocks", description="blocks: validation patches pixel-apart "
                                                   "from training patches; fields: whole fields (read off the "
                                                   "labels, drawn by class) whose labels are never trained on")
    val_limit: int = Field(1024, ge=1, description="at most this many (patch, date) validation samples")
    val_profile: Literal["patches", "tiles"] = Field("patches", description="where the temperature and the "
                                                     "validation profile are fitted after training: patches: "
                                                     "the validation patches alone (as early stopping scores "
                                                     "them); tiles: every validation pixel inside 256 px tiles "
                                                     "of its scene, as predict maps it")
    balance: bool = Field(False, description="sample patches inversely to the frequency of their rarest class")
    augment: bool = Field(True, description="random 90-degree rotations and flips")
    doy_shift: int = Field(0, ge=0, le=182, description="random day-of-year offsets in [-doy_shift, doy_shift] "
                           "days (0 = off)")
    other_threshold: float = Field(0.053, ge=0, lt=1, description="classes below this fraction of samples are "
                                   "merged into Other")
    classes: list[Text] | None = Field(None, description="explicit class names (overrides fitting); may include Other")
    cache: bool = Field(True, description="read patches from an on-disk float16 cache (bounded memory)")


class ModelConfig(Section):
    """Which model, and its options (a network's constructor options; see ``tropicrop models``)."""

    name: Text = Field("vunet_convlstm", description="a registered network or lightgbm")
    options: dict[str, Any] = Field(default_factory=dict, description="the model's options, checked against it")

    @model_validator(mode="after")
    def _known_model_and_options(self) -> ModelConfig:
        check_model_name(self.name)
        check_model_options(self.name, self.options)
        return self


class OptimConfig(Section):
    """Adam and the focal loss, as in the paper."""

    lr: float = Field(1e-3, gt=0, description="Adam's learning rate")
    batch_size: int = Field(16, ge=1, description="patches per training batch")
    focal_gamma: float = Field(2.0, ge=0, description="focusing parameter of the focal loss (0: cross-entropy)")
    weight_decay: float = Field(0.0, ge=0, description="Adam's L2 penalty")


class TrainerConfig(Section):
    """Lightning trainer settings: the same code runs on CPU, GPU (bf16) and many devices (DDP)."""

    max_epochs: int = Field(30, ge=1, description="cap on epochs (early stopping usually ends a net first)")
    steps_per_epoch: int = Field(50, ge=1, description="training batches per epoch (then validation)")
    patience: int = Field(5, ge=0, description="epochs without a better validation macro F1 before stopping (0 = off)")
    min_epochs: int = Field(0, ge=0, description="epochs before early stopping may stop a net")
    accelerator: Accelerator = Field("cpu", description="Lightning accelerator (auto: a GPU when there is one)")
    devices: Annotated[int, Field(ge=-1)] | Text | list[Annotated[int, Field(ge=0)]] = Field(
        1, description="device count (-1: all), device indices, or Lightning's device text (auto, '0,1')")
    strategy: Text = Field("auto", description="Lightning strategy (auto, ddp, ...)")
    precision: PrecisionText = Field("auto", description="auto: bf16-mixed where the hardware has fast bf16, else 32-true")
    num_workers: int = Field(0, ge=0, description="data loader worker processes")
    deterministic: bool = Field(True, description="false: cuDNN autotuning, faster on a GPU, not bit-reproducible")
    threads: int | None = Field(None, ge=1, description="torch intra-op threads (default: torch's choice)")
    parallel_nets: int = Field(1, ge=1, description="per-month runs on the CPU: nets trained this many at a time, "
                               "each in a process of its own with threads / parallel_nets torch threads (small "
                               "networks use one thread better than two: benchmarks/parallel_nets.py); 1: one "
                               "after another")
    log_every_n_steps: int = Field(10, ge=1, description="steps between logged training losses")
    progress: bool = Field(True, description="progress bars")

    @model_validator(mode="after")
    def _min_below_max(self) -> TrainerConfig:
        if self.min_epochs > self.max_epochs:
            raise problem("min_epochs", f"is {self.min_epochs}",
                          f"it must be between 0 and trainer.max_epochs ({self.max_epochs})")
        return self


class PretrainConfig(Section):
    """Self-supervised pretraining of a network before its supervised training (off with ``steps: 0``)."""

    steps: int = Field(0, ge=0, description="reconstruction steps before training (0: no pretraining); once per run, "
                       "every net of the run starts from the weights")
    scenes: list[Text] = Field(default_factory=list, description="scene folders whose images (never labels) it reads; "
                               "default: data.scene's (an experiment: both years)")
    mask: float = Field(0.5, gt=0, lt=1, description="share of the target date's blocks hidden and reconstructed")
    block: int = Field(4, ge=1, description="side (px) of a hidden block")
    lr: float = Field(1e-3, gt=0, description="Adam's learning rate while pretraining")


class TrainConfig(Section):
    """A training run (``tropicrop train -c``): mode, seed and the sections data, model, optim and trainer."""

    mode: Mode = Field(ALL_MONTHS, description="per-month: one network per labelled date; all-months: one network")
    seed: int = Field(0, ge=0, description="seed of sampling, initialisation and augmentation")
    data: DataConfig = Field(default_factory=DataConfig, description="where samples come from and how they are cut")
    model: ModelConfig = Field(default_factory=ModelConfig, description="which model, with which options")
    optim: OptimConfig = Field(default_factory=OptimConfig, description="optimiser and loss")
    trainer: TrainerConfig = Field(default_factory=TrainerConfig, description="Lightning trainer settings")
    pretrain: PretrainConfig = Field(default_factory=PretrainConfig, description="self-supervised pretraining "
                                     "(masked reconstruction of the target date) before training")

    @model_validator(mode="after")
    def _pretrain_a_network(self) -> TrainConfig:
        if self.pretrain.steps and not is_network(self.model.name):
            raise problem("pretrain.steps", f"is {self.pretrain.steps} for {self.model.name!r}",
                          "pretraining is for networks: set pretrain.steps=0")
        return self
