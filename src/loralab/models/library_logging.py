"""Keep the terminal for loralab's progress bars and summaries, not library chatter."""

from __future__ import annotations

import os
import warnings


def quiet_libraries() -> None:
    """Silence transformers' and datasets' logging and progress bars and their FutureWarnings
    (every loralab process: the CLI, grid workers, the server)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*base_model_name_or_path.*")
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    import datasets

    datasets.utils.logging.set_verbosity_error()
    datasets.utils.logging.disable_progress_bar()
