"""The embedded sample corpus (raw/) and the generator that builds part of it."""
