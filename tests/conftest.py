"""Suite-wide settings.

The tests run many tiny forward/backward passes, for which one intra-op thread is faster than
several: the thread start-up costs more than the arithmetic, and on a busy machine extra threads
oversubscribe the cores.
"""

import torch

torch.set_num_threads(1)
