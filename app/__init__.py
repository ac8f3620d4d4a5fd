"""facerec: a face-recognition REST microservice."""

__version__ = "0.1.0"
