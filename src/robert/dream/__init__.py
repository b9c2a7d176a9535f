"""Dreams: what the trained network thinks each molecule's spectrum looks like (Waldmann 2016, Fig. 5).

Two methods (:mod:`.generative`, :mod:`.optimisation`), compared with the class's real spectra
(:mod:`.real_spectra`, :mod:`.comparison`), drawn (:mod:`.figure`), reported (:mod:`.report`) and
tracked in MLflow by the stage (:mod:`.stage`, entry script ``src/dream.py``).
"""
