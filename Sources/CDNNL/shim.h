// Swift cannot import oneDNN's function-like and cast macros; this shim re-exports them as constants.
#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_debug.h>

static inline void *tao_dnnl_memory_allocate(void) { return DNNL_MEMORY_ALLOCATE; }
static const int TAO_ARG_SRC = DNNL_ARG_SRC;
static const int TAO_ARG_SRC_1 = DNNL_ARG_SRC_1;
static const int TAO_ARG_DST = DNNL_ARG_DST;
static const int TAO_ARG_FROM = DNNL_ARG_FROM;
static const int TAO_ARG_TO = DNNL_ARG_TO;
static const int TAO_ARG_WEIGHTS = DNNL_ARG_WEIGHTS;
static const int TAO_ARG_BIAS = DNNL_ARG_BIAS;
static const int TAO_ARG_MEAN = DNNL_ARG_MEAN;
static const int TAO_ARG_VARIANCE = DNNL_ARG_VARIANCE;
static const int TAO_ARG_SCALE = DNNL_ARG_SCALE;
static const int TAO_ARG_SHIFT = DNNL_ARG_SHIFT;
static const int TAO_ARG_WORKSPACE = DNNL_ARG_WORKSPACE;
static const int TAO_ARG_SCRATCHPAD = DNNL_ARG_SCRATCHPAD;
static const int TAO_ARG_DIFF_SRC = DNNL_ARG_DIFF_SRC;
static const int TAO_ARG_DIFF_SRC_1 = DNNL_ARG_DIFF_SRC_1;
static const int TAO_ARG_DIFF_DST = DNNL_ARG_DIFF_DST;
static const int TAO_ARG_DIFF_WEIGHTS = DNNL_ARG_DIFF_WEIGHTS;
static const int TAO_ARG_DIFF_BIAS = DNNL_ARG_DIFF_BIAS;
static const int TAO_ARG_DIFF_SCALE = DNNL_ARG_DIFF_SCALE;
static const int TAO_ARG_DIFF_SHIFT = DNNL_ARG_DIFF_SHIFT;
static const int TAO_ARG_MULTIPLE_SRC = DNNL_ARG_MULTIPLE_SRC;
static const int TAO_ARG_ATTR_POST_OP_DW = DNNL_ARG_ATTR_POST_OP_DW;
