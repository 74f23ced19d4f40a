"""TF Serving's REST `predict` JSON mapping, for tests: request body <-> tensors <-> response.

Follows the documented mapping (https://www.tensorflow.org/tfx/serving/api_rest):
  * Row form, `{"instances": [...]}`: one item per batch row. With one named input an
    item is that input's value; with several it is an object {input name: value}.
    Every named input is stacked along a new 0-th dimension. The response is
    `{"predictions": [...]}`: one value per row with one named output, else one
    object {output name: value} per row (outputs must share their 0-th dimension).
  * Columnar form, `{"inputs": value | {name: value}}`: each input whole, any shape.
    The response is `{"outputs": value | {name: value}}` (bare with one output).
  * DT_STRING values are UTF-8 JSON strings, or `{"b64": ...}` for binary data.
    Output tensors whose name ends in `_bytes` are sent back as `{"b64": ...}`.
  * Numbers take the signature's dtype; `NaN` and `Infinity` tokens are allowed.
  * A signature without inputs cannot be called ("Failed to get input map for
    signature", tensorflow_serving/util/json_tensor.cc; tensorflow/serving#1676).
This is a model of the server's JSON handling, not a server: it lets a test run a
request body, built exactly as a client sends it, through a loaded signature.
"""

import base64
from typing import Dict, Mapping, Tuple

import numpy as np


def _is_b64(value) -> bool:
  return isinstance(value, dict) and set(value) == {"b64"}


def _strings(value):
  """JSON strings and {"b64": ...} objects (nested in lists) -> bytes, same nesting."""
  if _is_b64(value):
    return base64.b64decode(value["b64"])
  if isinstance(value, str):
    return value.encode("utf-8")
  if isinstance(value, list):
    return [_strings(v) for v in value]
  raise ValueError(f"expected a string or {{\"b64\": ...}} for a DT_STRING input; got {value!r}")


def _to_array(value, spec) -> np.ndarray:
  """One JSON value -> numpy array of the signature input's dtype."""
  if spec.dtype.name == "string":
    return np.array(_strings(value), dtype=object)
  try:
    return np.asarray(value, dtype=spec.dtype.as_numpy_dtype)
  except (TypeError, ValueError) as e:
    raise ValueError(f"input {spec.name!r}: cannot convert JSON value to {spec.dtype.name} ({e})"
                     ) from None


def request_tensors(body: Mapping, input_specs: Mapping) -> Tuple[Dict[str, np.ndarray], str]:
  """A parsed request body -> ({input name: array}, "instances" or "inputs").

  `input_specs` maps each input name of the signature to its `tf.TensorSpec`.
  """
  names = sorted(input_specs)
  if not names:
    raise ValueError("Failed to get input map for signature (it has no inputs)")
  if ("instances" in body) == ("inputs" in body):
    raise ValueError('a predict request needs exactly one of "instances" or "inputs"')
  if "instances" in body:
    rows = body["instances"]
    if not isinstance(rows, list) or not rows:
      raise ValueError('"instances" must be a non-empty list of rows')
    named = all(isinstance(row, dict) and not _is_b64(row) for row in rows)
    if not named:
      if len(names) != 1:
        raise ValueError(f"the signature has {len(names)} inputs ({', '.join(names)}): each "
                         "instance must be an object naming them")
      rows = [{names[0]: row} for row in rows]
    for row in rows:
      if sorted(row) != names:
        raise ValueError(f"input size does not match signature: instance has {sorted(row)}, "
                         f"signature has {names}")
    columns = {name: [row[name] for row in rows] for name in names}
    return {name: _to_array(columns[name], input_specs[name]) for name in names}, "instances"
  inputs = body["inputs"]
  if not (isinstance(inputs, dict) and not _is_b64(inputs)):
    if len(names) != 1:
      raise ValueError(f"the signature has {len(names)} inputs: \"inputs\" must name them")
    inputs = {names[0]: inputs}
  if sorted(inputs) != names:
    raise ValueError(f"input size does not match signature: request has {sorted(inputs)}, "
                     f"signature has {names}")
  return {name: _to_array(inputs[name], input_specs[name]) for name in names}, "inputs"


def _json_value(name: str, array: np.ndarray):
  """One output array -> its JSON value (base64 objects for `_bytes` names)."""
  if array.dtype == object or array.dtype.kind == "S":
    if name.endswith("_bytes"):
      encode = lambda b: {"b64": base64.b64encode(b).decode("ascii")}
    else:
      encode = lambda b: b.decode("utf-8")
    return np.vectorize(encode, otypes=[object])(array).tolist() if array.ndim else encode(
        array.item())
  return array.tolist()


def response_body(outputs: Mapping[str, np.ndarray], form: str) -> dict:
  """Signature outputs -> the response body TF Serving sends for a request of `form`."""
  outputs = {name: np.asarray(value) for name, value in outputs.items()}
  if form == "inputs":
    if len(outputs) == 1:
      (name, array), = outputs.items()
      return {"outputs": _json_value(name, array)}
    return {"outputs": {name: _json_value(name, array) for name, array in outputs.items()}}
  batch_sizes = {name: array.shape[0] if array.ndim else None for name, array in outputs.items()}
  if len(set(batch_sizes.values())) != 1 or None in batch_sizes.values():
    raise ValueError(f"outputs have inconsistent batch sizes {batch_sizes}: use \"inputs\"")
  values = {name: _json_value(name, array) for name, array in outputs.items()}
  if len(values) == 1:
    return {"predictions": next(iter(values.values()))}
  batch = next(iter(batch_sizes.values()))
  return {"predictions": [{name: values[name][i] for name in values} for i in range(batch)]}


def _from_json(value):
  """A JSON output value -> numpy (b64 objects -> bytes)."""
  if _is_b64(value):
    return base64.b64decode(value["b64"])
  if isinstance(value, list) and any(_is_b64(v) or isinstance(v, list) for v in value):
    items = [_from_json(v) for v in value]
    if all(isinstance(v, bytes) for v in items):
      array = np.empty(len(items), dtype=object)
      array[:] = items
      return array
    return np.stack(items)
  return np.asarray(value)


def response_arrays(body: Mapping, output_names) -> Dict[str, np.ndarray]:
  """What a client does with a response body: {output name: array or bytes}."""
  output_names = sorted(output_names)
  if "outputs" in body:
    outputs = body["outputs"]
    if len(output_names) == 1:
      return {output_names[0]: _from_json(outputs)}
    return {name: _from_json(outputs[name]) for name in output_names}
  rows = body["predictions"]
  if len(output_names) == 1:
    return {output_names[0]: _from_json(rows)}
  return {name: _from_json([row[name] for row in rows]) for name in output_names}
