"""A tiny AnySplat configuration (overrides of anysplat-mini) shared by the fast CPU tests."""

TINY = dict(
    depth=1,
    dino_depth=1,
    intermediate_layer_idx=(0, 0, 0, 0),
    camera_trunk_depth=1,
    dpt_features=32,
    dpt_out_channels=(8, 8, 16, 16),
    embed_dim=64,
    num_heads=1,
    dino_num_heads=1,
    camera_num_heads=2,
)
