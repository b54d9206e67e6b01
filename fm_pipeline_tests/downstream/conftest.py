"""The adaptation tests' tiny pretrained checkpoint (2 layers, 32 wide, block 32) serves the downstream tests."""

from fm_pipeline_tests.adaptation.conftest import domain_data, one_thread, tiny_corpus

__all__ = ["domain_data", "one_thread", "tiny_corpus"]
