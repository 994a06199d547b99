"""The spec grammar as text, importable without torch so ``cnnlab summary --help`` stays fast."""

# The deepest network of the lectures, ResNet-1202, has about 1200 weighted layers; a spec may
# expand to 2000 (twice that, before the implicit ReLUs). [conv6]x99999999 would otherwise
# build for hours, and 10000 layers already take half a minute to summarise.
MAX_SPEC_LAYERS = 2000

GRAMMAR = f"""\
A spec is layers joined by '-'; [ ... ]xN repeats a group N times (at most {MAX_SPEC_LAYERS}
layers in all). Layers (case-insensitive):
  conv<C>[k<K>][s<S>][p<P>][d<D>][g<G>]  C filters K×K (k3), stride S (s1), zero padding P
                                         per side (p0), dilation D (d1), G groups (g1)
  pool<K>[s<S>][p<P>], maxpool<K>...     max pooling K×K, stride S (default K)
  avgpool<K>[s<S>][p<P>]                 average pooling
  gap                                    global average pooling (each map to 1×1)
  fc<N>                                  fully connected, N outputs (maps flattened first)
  relu, sigmoid, tanh                    activations
  bn                                     batch normalization
  dropout[<P>]                           dropout, probability P (0.5), e.g. dropout0.3
A spec that names no activation gets a ReLU after every conv and fc except a final fc (after
a bn that directly follows the layer); a spec that names any activation is taken literally.
Examples: LeNet-5 shape  [conv6k5-pool2]x2-conv120k5-fc84-fc10  (with --input 1x32x32)
          VGG-16  [conv64k3p1]x2-pool2-[conv128k3p1]x2-pool2-[conv256k3p1]x3-pool2-
                  [conv512k3p1]x3-pool2-[conv512k3p1]x3-pool2-fc4096-fc4096-fc1000"""
