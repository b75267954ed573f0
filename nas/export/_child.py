"""Child process of the INT8 export: ``python -m nas.export._child JOB.json``, or ``--serve`` for many jobs.

The job file names the spec, the weights, the calibration samples, the input size and where to write the model.
On a converter error the child writes ``{"error": message}`` to the job's ``error`` path and exits with status 3.
With ``--serve`` it reads one job path per line on stdin and answers each with a line ``@@nas-done <rc>`` on
stdout (rc 0 or 3), until stdin closes; its parent replaces it after a number of jobs, since the converter leaks.
"""

from __future__ import annotations

import json
import sys
import traceback


def convert(job: dict) -> bytes:
    import numpy as np
    import tensorflow as tf
    import tf_keras as keras

    from nas.model import PixelRange, build_model, int8_ready, load_weights, set_weights
    from nas.space import ArchSpec

    threads = int(job.get("threads") or 0)
    if threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:  # TensorFlow already runs in this process (an in-process conversion): keep its threads
            pass
    spec = ArchSpec.from_json(job["spec"])
    h, w = job["input_hw"]
    core = build_model(spec, "deploy", input_hw=(h, w), batch_size=1, seed=0)
    calib = np.load(job["calibration"], allow_pickle=False)
    if job.get("weights"):
        weights = load_weights(job["weights"])
        set_weights(core, weights)
        if job.get("balance", True):  # exact in float: what INT8 needs (see nas.model.int8_ready)
            weights = int8_ready(spec, weights, calib, log=lambda m: print(m, file=sys.stderr),
                                 rounding=job.get("rounding", True))
            set_weights(core, weights)
    model = keras.Model(core.input, PixelRange(name="pixel_range")(core.output), name=core.name)

    def representative():
        for sample in calib:
            yield [sample[None]]

    fn = tf.function(lambda x: model(x, training=False), input_signature=[tf.TensorSpec((1, h, w, 3), tf.float32)])
    conv = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], model)
    full_integer(conv, representative, tf.uint8)
    return bytes(conv.convert())


def full_integer(conv, representative, io_type) -> None:
    """Set a ``tf.lite.TFLiteConverter`` to full-integer INT8: every op INT8 (none left in float), calibrated on
    ``representative``, with ``io_type`` (``tf.uint8``, ``tf.int8``) input and output."""
    import tensorflow as tf

    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = io_type
    conv.inference_output_type = io_type


DONE = "@@nas-done"


def run_job(path: str) -> int:
    """Convert the job at ``path``: the model goes to its ``out``, an error to its ``error`` file (status 3)."""
    with open(path, encoding="utf-8") as fh:
        job = json.load(fh)
    try:
        blob = convert(job)
    except Exception as exc:  # report the converter's own message to the parent
        traceback.print_exc()
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        with open(job["error"], "w", encoding="utf-8") as fh:
            json.dump({"error": f"{exc.__class__.__name__}: {msg}"}, fh)
        return 3
    with open(job["out"], "wb") as fh:
        fh.write(blob)
    return 0


def serve() -> int:
    for line in sys.stdin:
        path = line.strip()
        if not path:
            continue
        rc = run_job(path)
        sys.stdout.write(f"{DONE} {rc}\n")
        sys.stdout.flush()
    return 0


def main(argv: list[str]) -> int:
    if len(argv) > 1 and argv[1] == "--serve":
        return serve()
    return run_job(argv[1])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
