"""The builtin operators TensorFlow Lite for Microcontrollers can resolve, and a
check that a LiteRT file uses only those.

Source: the ``Add<Op>()`` registrations of ``MicroMutableOpResolver`` in
tensorflow/tflite-micro, ``tensorflow/lite/micro/micro_mutable_op_resolver.h``
at commit 933f830139560b2f9a47b5418439350c728a796f (2022); newer TFLM releases
add operators (never remove one), so a file passing this list loads on them too.
Which tensor types each TFLM kernel takes is not in this list: the int8 files are
checked for int8 tensors separately (``litert.check_integer_only``), and TFLM's
kernels of these operators all take int8.
"""

from typing import List, Sequence

TFLM_SOURCE = ("tensorflow/tflite-micro: tensorflow/lite/micro/micro_mutable_op_resolver.h "
               "@ 933f830139560b2f9a47b5418439350c728a796f")

TFLM_BUILTIN_OPS = frozenset("""
ABS ADD ADD_N ARG_MAX ARG_MIN ASSIGN_VARIABLE AVERAGE_POOL_2D BATCH_TO_SPACE_ND
BROADCAST_ARGS BROADCAST_TO CALL_ONCE CAST CEIL CONCATENATION CONV_2D COS CUMSUM
DEPTH_TO_SPACE DEPTHWISE_CONV_2D DEQUANTIZE ELU EQUAL EXP EXPAND_DIMS FILL FLOOR
FLOOR_DIV FLOOR_MOD FULLY_CONNECTED GATHER GATHER_ND GREATER GREATER_EQUAL HARD_SWISH
IF L2_NORMALIZATION L2_POOL_2D LEAKY_RELU LESS LESS_EQUAL LOG LOGICAL_AND LOGICAL_NOT
LOGICAL_OR LOGISTIC MAXIMUM MAX_POOL_2D MIRROR_PAD MEAN MINIMUM MUL NEG NOT_EQUAL PACK
PAD PADV2 PRELU QUANTIZE READ_VARIABLE REDUCE_MAX RELU RELU6 RESHAPE RESIZE_BILINEAR
RESIZE_NEAREST_NEIGHBOR ROUND RSQRT SHAPE SIN SLICE SOFTMAX SPACE_TO_BATCH_ND
SPACE_TO_DEPTH SPLIT SPLIT_V SQUEEZE SQRT SQUARE STRIDED_SLICE SUB SVDF TANH
TRANSPOSE_CONV TRANSPOSE UNPACK UNIDIRECTIONAL_SEQUENCE_LSTM VAR_HANDLE WHILE ZEROS_LIKE
""".split())


def ops_outside_tflm(op_names: Sequence[str]) -> List[str]:
    """The operators of a file that TFLM's resolver (see :data:`TFLM_SOURCE`) lacks."""
    return sorted(name for name in op_names if name not in TFLM_BUILTIN_OPS)
