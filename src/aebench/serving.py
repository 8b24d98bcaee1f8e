"""The servable encoder registered in MLflow for every trained model ("model from code").

MLflow executes this file to build the model, so no Python object is pickled; the weights
come from the checkpoint artifact, loaded with `torch.load(weights_only=True)`.
Input: float32 tensor (batch, *data shape), images scaled to [0, 1]. Output: codes (batch, d).
"""

import mlflow
import numpy as np
import torch
from mlflow.pyfunc import PythonModel

from aebench.models import load_checkpoint


class EncoderModel(PythonModel):
    def load_context(self, context):
        self.model, _ = load_checkpoint(context.artifacts["checkpoint"])
        self.model.eval()

    def predict(self, context, model_input, params=None):
        if isinstance(model_input, dict):  # a named-tensor request: take its only tensor
            (model_input,) = model_input.values()
        x = torch.as_tensor(np.asarray(model_input, dtype=np.float32))
        with torch.no_grad():
            return self.model.encode(x).numpy()


mlflow.models.set_model(EncoderModel())
