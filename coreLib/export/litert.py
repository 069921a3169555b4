"""LiteRT conversion of the SavedModel's signatures, and what a file holds:
its operators, whether any kernel takes float tensors, the arena it plans."""

from typing import Callable, Dict, Iterable, List, Optional, Sequence

import numpy as np

from coreLib import storage
from coreLib.errors import ActrecogError
from coreLib.export import config as config_lib
from coreLib.inference import exported_model

tf = storage.tf

_CUSTOM_OPERATOR_NAME = "CUSTOM"
# Kernels whose inputs must all be int8 (int32 bias) in a full-integer file.
INTEGER_KERNELS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


def _converter(saved_model_dir: str, signature: str, format_name: str,
               representative: Optional[Callable[[], Iterable[dict]]]):
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir,
                                                         signature_keys=[signature])
    # Builtin kernels only: the ai-edge-litert runtime has no Flex delegate.
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if format_name != config_lib.FLOAT32_FORMAT:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if format_name == config_lib.FP16_FORMAT:
        converter.target_spec.supported_types = [tf.float16]
    if format_name == config_lib.INT8_FORMAT:
        # Full integer: int8 kernels only (the conversion fails rather than keep a
        # float op), int8 inputs and outputs, per-channel weights (the default).
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return converter


def convert_to_litert(saved_model_dir: str, signature: str, format_name: str,
                      representative: Optional[Callable[[], Iterable[dict]]] = None
                      ) -> bytes:
    """Converts one SavedModel signature to a LiteRT flatbuffer, builtin ops only.

    Args:
        saved_model_dir: the SavedModel folder (for int8: one whose signatures
            take scaled float32 pixels, see ``write_saved_model(scaled_input=True)``).
        signature: ``serving_default`` or ``stream_step``.
        format_name: ``float32``, ``fp16`` (float16 weights), ``dynamic``
            (dynamic-range int8 weights) or ``int8`` (full integer).
        representative: for int8, yields the signature's inputs by name
            (float32, batch 1), the calibration data.

    Raises:
        ActrecogError: the graph needs an op without a builtin (int8) kernel.
    """
    converter = _converter(saved_model_dir, signature, format_name, representative)
    try:
        return converter.convert()
    except Exception as error:  # the converter raises its own ConverterError and others
        lines = [line.strip() for line in str(error).splitlines() if "error" in line.lower()]
        reason = (lines or [type(error).__name__])[0]
        kind = "int8 builtin ops" if format_name == config_lib.INT8_FORMAT else "builtin ops"
        raise ActrecogError(f"{saved_model_dir}: {signature} does not convert to LiteRT "
                            f"with {kind} only ({reason})") from None


def _schema():
    from ai_edge_litert import schema_py_generated as schema
    return schema


def litert_op_names(model_content: bytes) -> List[str]:
    """Sorted operator names a LiteRT flatbuffer uses (``CUSTOM:<code>`` for non-builtin).

    Read from the flatbuffer's operator codes, so a file is checked without
    being run (a Flex op would make the interpreter fail only at allocation).
    """
    schema = _schema()
    names = {value: name for name, value in vars(schema.BuiltinOperator).items()
             if not name.startswith("_")}
    model = schema.Model.GetRootAs(model_content, 0)
    found = set()
    for index in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(index)
        # Codes above 127 live in BuiltinCode; older files only in the deprecated byte.
        value = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        name = names.get(value, f"BUILTIN_{value}")
        if name == _CUSTOM_OPERATOR_NAME:
            name = f"{_CUSTOM_OPERATOR_NAME}:{(code.CustomCode() or b'').decode()}"
        found.add(name)
    return sorted(found)


def check_builtin_only(op_names: Sequence[str], what: str) -> None:
    """Raises ActrecogError when a LiteRT file holds a custom or Flex op."""
    custom = [name for name in op_names if name.startswith(_CUSTOM_OPERATOR_NAME)]
    if custom:
        raise ActrecogError(f"{what}: holds non-builtin LiteRT ops {', '.join(custom)}")


def float_kernels(model_content: bytes) -> Dict[str, int]:
    """Operators that read or write a float tensor, counted by name (empty for a
    full-integer file: every kernel runs on int8/int32 tensors)."""
    schema = _schema()
    names = {value: name for name, value in vars(schema.BuiltinOperator).items()
             if not name.startswith("_")}
    float_types = {schema.TensorType.FLOAT32, schema.TensorType.FLOAT16,
                   schema.TensorType.FLOAT64}
    model = schema.Model.GetRootAs(model_content, 0)
    found: Dict[str, int] = {}
    for graph_index in range(model.SubgraphsLength()):
        graph = model.Subgraphs(graph_index)
        for op_index in range(graph.OperatorsLength()):
            operator = graph.Operators(op_index)
            tensors = [operator.Inputs(i) for i in range(operator.InputsLength())]
            tensors += [operator.Outputs(i) for i in range(operator.OutputsLength())]
            if any(index >= 0 and graph.Tensors(index).Type() in float_types
                   for index in tensors):
                code = model.OperatorCodes(operator.OpcodeIndex())
                name = names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "?")
                found[name] = found.get(name, 0) + 1
    return found


def check_integer_only(model_content: bytes, what: str) -> None:
    """Raises ActrecogError naming the operators of a full-integer file that run
    on float tensors."""
    found = float_kernels(model_content)
    if found:
        raise ActrecogError(f"{what}: not full-integer: float tensors in "
                            f"{', '.join(f'{name} x{count}' for name, count in sorted(found.items()))}")


def planned_arena_bytes(model_content: bytes) -> int:
    """Peak bytes of live activation tensors of one batch-1 call, from the
    interpreter's plan: each non-constant tensor lives from the operator that
    writes it (or the start, for inputs) to the last that reads it (or the end,
    for outputs); the peak over operators of the bytes alive (what a static
    arena planner such as TFLM's must hold at least; the weights are not in it).
    """
    interpreter = exported_model.litert_interpreter(model_content, num_threads=1)
    interpreter.allocate_tensors()
    details = {d["index"]: d for d in interpreter.get_tensor_details()}
    operators = interpreter._get_ops_details()   # the only API listing the plan's order
    constants = _constant_tensors(model_content)
    born, dies = {}, {}
    inputs = [d["index"] for d in interpreter.get_input_details()]
    outputs = [d["index"] for d in interpreter.get_output_details()]
    for index in inputs:
        born[index] = 0
    for step, operator in enumerate(operators):
        for index in operator["outputs"]:
            born.setdefault(index, step)
        for index in operator["inputs"]:
            if index >= 0 and index not in constants:
                born.setdefault(index, step)
                dies[index] = step
    for index in outputs:
        dies[index] = len(operators)
    peak = 0
    for step in range(len(operators) + 1):
        alive = [index for index in born if born[index] <= step <= dies.get(index, born[index])]
        peak = max(peak, sum(_tensor_bytes(details[index]) for index in alive))
    return peak


def _tensor_bytes(detail: dict) -> int:
    return int(np.prod(detail["shape"])) * np.dtype(detail["dtype"]).itemsize


def _constant_tensors(model_content: bytes) -> set:
    schema = _schema()
    model = schema.Model.GetRootAs(model_content, 0)
    graph = model.Subgraphs(0)
    constants = set()
    for index in range(graph.TensorsLength()):
        buffer = model.Buffers(graph.Tensors(index).Buffer())
        if buffer is not None and (buffer.DataLength() > 0 or buffer.Size() > 0):
            constants.add(index)
    return constants
