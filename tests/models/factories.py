"""A user's own model code, as `--arch tests.models.factories:softmax_faces` names it."""

from mirisk.models.architectures import build_model


def softmax_faces():
    return build_model("softmax", (1, 112, 92), 40)
