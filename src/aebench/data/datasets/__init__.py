"""One module per dataset or family; `aebench.data.registry` names them.

Generated (no network): `lines`, `shapes`, `digits` (+ `rotation`), `manifolds` (loop, sphere,
torus), `letters`; shared checks in `common`. Real (fetched through `aebench.data.fetch`):
`mnist` (+ Fashion-MNIST), `omniglot`, `cifar10`, `celeba`, `dsprites`; the grey image
options in `image_options`.
"""
