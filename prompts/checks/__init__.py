"""The answer checks, one part per file behind one small interface (``base.py``): gates that judge the passages
before the model is called (``PassageGate``) and checks that judge the model's draft (``AnswerCheck``). The wiring
composes the ordered lists named by ``[answer] gates`` and ``[answer] checks`` (``registry.py``); the answer
pipeline runs them (``run.py``) and knows none of them by name."""
