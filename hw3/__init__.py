"""EE-411 Homework 3: NumPy backprop (Part 1) and MLP / CNN experiments on KMNIST (Part 2).

Import what you need from its module, e.g. `from hw3.models import MLP`.
"""
