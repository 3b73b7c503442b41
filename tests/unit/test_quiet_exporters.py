"""distill.export.quiet_exporters drops the exporters' known noise and nothing else."""

import logging
import warnings

from distill.export import quiet_exporters


def _emit() -> None:
    logging.warning("Please consider to run pre-processing before quantization. ...")
    logging.getLogger("torch.onnx._internal.exporter._registration").warning(
        "torchvision is not installed. Skipping torchvision::nms")
    warnings.warn("`isinstance(treespec, LeafSpec)` is deprecated", FutureWarning)
    logging.warning("a real problem")
    warnings.warn("another deprecation", FutureWarning)


def test_known_noise_is_dropped_and_other_messages_pass(caplog):
    with caplog.at_level(logging.WARNING):
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            with quiet_exporters():
                _emit()
        logging.getLogger("torch.onnx.x").warning("after the block")
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["a real problem", "after the block"]
    assert [str(w.message) for w in seen] == ["another deprecation"]
