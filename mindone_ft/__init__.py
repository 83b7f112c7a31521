"""mindone_ft: fine-tune Hugging Face Transformers models on MindSpore with the Transformers API."""

from .utils import compat as _compat  # noqa: F401  (sets environment defaults before transformers loads)

__version__ = "0.1.0"

from transformers import AutoConfig, BertConfig  # noqa: E402  (configurations are reused from transformers)

from .cache_utils import DynamicCache, StaticCache  # noqa: E402
from .generation import GenerationMixin  # noqa: E402
from .modeling_outputs import ModelOutput  # noqa: E402
from .modeling_utils import MSPreTrainedModel, load_state_dict_from_file  # noqa: E402
from .models.auto import (  # noqa: E402
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForMaskedLM,
    AutoModelForMultipleChoice,
    AutoModelForPreTraining,
    AutoModelForQuestionAnswering,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
)
# Model families: one line each (every family's `__all__` lists its classes).
from .models.albert import *  # noqa: E402,F401,F403
from .models.bert import *  # noqa: E402,F401,F403
from .models.deberta_v2 import *  # noqa: E402,F401,F403
from .models.distilbert import *  # noqa: E402,F401,F403
from .models.mpnet import *  # noqa: E402,F401,F403
from .models.modernbert import *  # noqa: E402,F401,F403
from .models.electra import *  # noqa: E402,F401,F403
from .models.gemma3 import *  # noqa: E402,F401,F403
from .models.gpt2 import *  # noqa: E402,F401,F403
from .models.llama import *  # noqa: E402,F401,F403
from .models.mistral import *  # noqa: E402,F401,F403
from .models.qwen2 import *  # noqa: E402,F401,F403
from .models.qwen3 import *  # noqa: E402,F401,F403
from .models.roberta import *  # noqa: E402,F401,F403
from .models.xlm_roberta import *  # noqa: E402,F401,F403
from .optimization import get_scheduler  # noqa: E402
from . import peft  # noqa: E402,F401  (LoRA with Hugging Face PEFT's API and files)
from .pipelines import pipeline  # noqa: E402
from .trainer import Trainer  # noqa: E402
from .trainer_callback import (  # noqa: E402
    DefaultFlowCallback,
    EarlyStoppingCallback,
    PrinterCallback,
    ProgressCallback,
    TensorBoardCallback,
    TrainerCallback,
    TrainerControl,
    TrainerState,
)
from .trainer_utils import EvalPrediction, IntervalStrategy, PredictionOutput, TrainOutput, set_seed  # noqa: E402
from .training_args import TrainingArguments  # noqa: E402
