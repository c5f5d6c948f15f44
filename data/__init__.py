"""Public data sets for b2models: where they live, how to fetch them, and loaders.

See ``DESIGN.md`` (section "Data"). The data are never part of the project: :func:`root` resolves
``$B2MODELS_DATA``, else ``./data/local``, else ``../shared/data`` next to the project root.
"""

from .fetch import fetch
from .loaders import (
    L1L2_FLASH_DT,
    LIBRISPEECH_SUBSETS,
    MAX_BAD_FRACTION,
    caltech_split_files,
    fly_l1l2_recordings,
    lfw_people,
    librispeech_files,
    librispeech_speakers,
    load_caltech,
    load_connectome_inputs,
    load_connectome_t4a_inputs,
    load_fly_l1l2,
    load_fly_t4t5,
    load_lamina_params,
    load_lfw,
    load_librispeech,
    load_panorama_mat,
    load_resu_t4a_weights,
    load_t4t5_input_params,
    load_train400,
)
from .registry import (
    DATASETS,
    ENV_VAR,
    DataError,
    Dataset,
    locate,
    require,
    root,
    search_roots,
    status,
)

__all__ = [
    "DATASETS",
    "ENV_VAR",
    "L1L2_FLASH_DT",
    "LIBRISPEECH_SUBSETS",
    "MAX_BAD_FRACTION",
    "DataError",
    "Dataset",
    "caltech_split_files",
    "fetch",
    "lfw_people",
    "librispeech_files",
    "librispeech_speakers",
    "load_caltech",
    "load_connectome_inputs",
    "load_connectome_t4a_inputs",
    "fly_l1l2_recordings",
    "load_fly_l1l2",
    "load_fly_t4t5",
    "load_lamina_params",
    "load_lfw",
    "load_librispeech",
    "load_panorama_mat",
    "load_resu_t4a_weights",
    "load_t4t5_input_params",
    "load_train400",
    "locate",
    "require",
    "root",
    "search_roots",
    "status",
]
