"""The scenario engine: from a catalog and a config to a :class:`ScenarioSet`.

One subpackage, one concept a module:

- :mod:`~portopt.engine.generate`: the front, :func:`generate_scenarios`;
- :mod:`~portopt.engine.inputs`: the catalog and config turned into the engine's arrays;
- :mod:`~portopt.engine.numpy_engine`: the NumPy reference engine;
- :mod:`~portopt.engine.cupy_engine`: the CUDA kernel (``kernels/``) through CuPy, imported
  only when the ``cupy`` backend is chosen;
- :mod:`~portopt.engine.philox`: the Philox4x32-10 stream both engines draw from;
- :mod:`~portopt.engine.waterfall`: the MOU cash split;
- :mod:`~portopt.engine.scenario_set`: :class:`EngineResult`, the one result type of both
  engines, and :class:`ScenarioSet`, what the optimiser reads;
- :mod:`~portopt.engine.backend`: the backend chosen once, and the one host transfer.
"""

from portopt.engine.generate import generate_scenarios
from portopt.engine.scenario_set import EngineResult, ScenarioSet

__all__ = ["EngineResult", "ScenarioSet", "generate_scenarios"]
