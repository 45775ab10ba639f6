"""The recognition models: shapes, learning, determinism, and how aurel uses the AU graph."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from merec.errors import MerecError
from merec.models import MODELS, build_model, model_options
from merec.models.aurel import AURelNet, normalised_adjacency, roi_au_prior
from merec.models.c3d import SqueezeExcite3d
from merec.models.mdmo import mdmo_features

ROI_NAMES = ["right_brow", "left_brow", "nose", "mouth_left"]
AUS = [1, 2, 12, 25, 17]
SHAPES = {
    "apex": (3, 16, 16), "face": (4, 3, 16, 16), "rois": (4, 4, 3, 8, 8), "frames": (5, 1, 16, 16),
    "frontal": (1, 16, 16), "adjacency": (5, 5),
}  # fmt: skip
OPTIONS = {
    "stst": {"dropout": 0.0}, "offapex": {"dropout": 0.0, "hidden": 64}, "aurel": {"dropout": 0.0, "width": 16},
    "c3d": {"dropout": 0.0, "se": True}, "t3d": {"dropout": 0.0, "stem": 8, "growth": 4}, "r3d": {}, "mdmo": {},
    "capsule": {"input_size": 136, "width": 4}, "dsnca": {"input_size": 136, "width": 4, "attention_reduction": 4},
    "htnet": {"input_size": 16, "patch": 4, "dims": [16, 32], "heads": [2, 4], "depths": [1, 1], "stabilise": False},
}  # fmt: skip
# a face in the crop: eyes at 38% height and 32%/68% width, mouth corners at 75% height
LANDMARKS = torch.full((1, 68, 2), 0.5)
LANDMARKS[0, 36:42], LANDMARKS[0, 42:48] = torch.tensor([0.32, 0.38]), torch.tensor([0.68, 0.38])
LANDMARKS[0, 48], LANDMARKS[0, 54] = torch.tensor([0.38, 0.75]), torch.tensor([0.62, 0.75])
NETWORKS = [name for name in MODELS if name != "mdmo"]  # trained by gradient descent


def toy_batch(n: int = 12, seed: int = 0) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Inputs whose class is the location of a motion band, and their labels."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 3
    face = 0.1 * torch.randn(n, 4, 3, 16, 16, generator=generator)
    rois = 0.1 * torch.randn(n, 4, 4, 3, 8, 8, generator=generator)
    frames = 0.5 + 0.05 * torch.randn(n, 5, 1, 16, 16, generator=generator)
    for i, k in enumerate(labels.tolist()):
        face[i, :, 1, 5 * k : 5 * k + 5] += 1.0
        rois[i, k, :, 1] += 1.0
        frames[i, 2:, 0, 5 * k : 5 * k + 5] += 0.3  # a band brightens as the expression develops
    adjacency = torch.rand(5, 5, generator=generator).fill_diagonal_(0)
    landmarks = LANDMARKS.expand(n, 68, 2)
    frontal = frames[:, -1] + 0.02 * torch.randn(n, 1, 16, 16, generator=generator)  # the apex seen frontally
    batch = {"apex": face[:, -1], "face": face, "rois": rois, "frames": frames, "frontal": frontal}
    batch["landmarks"] = landmarks
    return batch | {"adjacency": adjacency}, labels


def make(name: str, seed: int = 0, **options) -> nn.Module:
    torch.manual_seed(seed)
    context = {"roi_names": ROI_NAMES, "aus": AUS}
    return build_model(name, 3, SHAPES, OPTIONS[name] | options, context)


@pytest.mark.parametrize("name", MODELS)
def test_models_map_a_batch_to_class_logits(name: str) -> None:
    batch, _ = toy_batch(5)
    assert make(name)(batch).shape == (5, 3)


@pytest.mark.parametrize("name", NETWORKS)
def test_a_few_training_steps_lower_the_loss(name: str) -> None:
    batch, labels = toy_batch()
    model = make(name)
    criterion = model.criterion(torch.ones(3)) if hasattr(model, "criterion") else nn.CrossEntropyLoss()
    optimiser = torch.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for _ in range(15):
        optimiser.zero_grad()
        loss = criterion(model(batch), labels)
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize("name", NETWORKS)
def test_models_are_deterministic_under_a_seed(name: str) -> None:
    batch, _ = toy_batch(4)
    first, second, other = make(name, seed=1), make(name, seed=1), make(name, seed=2)
    first.eval(), second.eval(), other.eval()
    assert torch.equal(first(batch), second(batch))
    assert not torch.equal(first(batch), other(batch))


def test_aurel_output_depends_on_the_adjacency() -> None:
    batch, _ = toy_batch(4)
    model = make("aurel").eval()
    reference = model(batch)
    changed = batch | {"adjacency": torch.zeros(5, 5)}
    assert not torch.allclose(reference, model(changed))
    # the same graph (a copy) gives the same output
    assert torch.equal(reference, model(batch | {"adjacency": batch["adjacency"].clone()}))


def test_aurel_normalises_the_adjacency_symmetrically_with_self_loops() -> None:
    adjacency = torch.tensor([[0.0, 1.0, 0.0], [0.5, 0.0, 0.0], [0.0, 0.0, 0.0]])
    symmetric = torch.tensor([[0.0, 0.75, 0.0], [0.75, 0.0, 0.0], [0.0, 0.0, 0.0]]) + torch.eye(3)
    degree = symmetric.sum(1)
    expected = symmetric / torch.sqrt(degree[:, None] * degree[None, :])
    normalised = normalised_adjacency(adjacency)
    assert torch.allclose(normalised, expected)
    assert torch.allclose(normalised, normalised.T)
    assert torch.linalg.eigvalsh(normalised).max() <= 1 + 1e-6
    assert torch.equal(normalised_adjacency(torch.zeros(3, 3)), torch.eye(3))  # isolated AUs keep themselves


def test_aurel_feeds_the_normalised_graph_to_its_graph_convolution(monkeypatch: pytest.MonkeyPatch) -> None:
    import merec.models.aurel as aurel

    seen = []
    monkeypatch.setattr(aurel, "normalised_adjacency", lambda a: seen.append(a) or normalised_adjacency(a))
    batch, _ = toy_batch(2)
    model = make("aurel").eval()
    model(batch)
    assert len(seen) == 1 and torch.equal(seen[0], batch["adjacency"])
    # the gradient reaches the graph: the output is a function of every edge weight
    adjacency = batch["adjacency"].clone().requires_grad_(True)
    model(batch | {"adjacency": adjacency}).sum().backward()
    off_diagonal = adjacency.grad[~torch.eye(5, dtype=torch.bool)]
    assert (off_diagonal.abs() > 0).all()


def test_aurel_needs_the_graph_and_maps_aus_to_their_regions() -> None:
    shapes = {k: v for k, v in SHAPES.items() if k != "adjacency"}
    with pytest.raises(MerecError, match="needs the fold's AU graph"):
        build_model("aurel", 3, shapes, {})
    batch, _ = toy_batch(2)
    with pytest.raises(MerecError, match="needs the fold's AU graph"):
        make("aurel")({k: v for k, v in batch.items() if k != "adjacency"})
    prior = roi_au_prior(ROI_NAMES, AUS, 2.0)
    assert prior[0].tolist() == [2.0, 2.0, 0.0, 0.0]  # AU1 -> brows
    assert prior[2].tolist() == [0.0, 0.0, 0.0, 2.0]  # AU12 -> mouth
    model = make("aurel")
    assert isinstance(model, AURelNet) and torch.equal(model.roi_to_au.detach(), prior)
    no_context = build_model("aurel", 3, SHAPES, {})
    assert torch.equal(no_context.roi_to_au.detach(), torch.zeros(5, 4))  # uniform without names


def test_c3d_squeeze_excitation_is_optional() -> None:
    with_se, without = make("c3d", se=True), make("c3d", se=False)
    assert any(isinstance(m, SqueezeExcite3d) for m in with_se.modules())
    assert not any(isinstance(m, SqueezeExcite3d) for m in without.modules())
    gate = SqueezeExcite3d(4, 2)
    x = torch.randn(2, 4, 3, 5, 5)
    assert gate(x).shape == x.shape


@pytest.mark.parametrize(("name", "parameters"), [("stst", 1_683), ("offapex", 2_664_475)])
def test_apex_models_have_the_published_sizes(name: str, parameters: int) -> None:
    model = build_model(name, 3, {"apex": (3, 32, 32)}, {})  # resized to the published 28 px
    assert sum(p.numel() for p in model.parameters()) == parameters
    assert model({"apex": torch.randn(2, 3, 32, 32)}).shape == (2, 3)


@pytest.mark.parametrize("name", ["stst", "offapex"])
def test_apex_models_stabilise_head_drift_unless_told_not_to(name: str) -> None:
    batch, _ = toy_batch(3)
    drift = batch["apex"].clone()
    drift[:, :2] += torch.randn(3, 2, 1, 1)  # the whole face moved alike
    model = make(name).eval()
    assert torch.allclose(model(batch | {"apex": drift}), model(batch), atol=1e-5)
    raw = make(name, stabilise=False).eval()
    assert not torch.allclose(raw(batch | {"apex": drift}), raw(batch), atol=1e-3)


def test_offapex_reads_u_and_v_but_not_strain() -> None:
    batch, _ = toy_batch(3)
    model = make("offapex").eval()
    strain = batch["apex"].clone()
    strain[:, 2] += 1.0
    assert torch.equal(model(batch | {"apex": strain}), model(batch))


def test_t3d_reads_the_frame_volume_and_gates_its_channels() -> None:
    from merec.models.t3d import MaxExcite3d

    batch, _ = toy_batch(3)
    model = make("t3d").eval()
    assert sum(isinstance(m, MaxExcite3d) for m in model.modules()) == 5  # after 3 blocks and 2 transitions
    reference = model(batch)
    assert torch.equal(model(batch | {"face": torch.zeros_like(batch["face"])}), reference)  # flow unused
    assert not torch.allclose(model(batch | {"frames": batch["frames"].flip(-1)}), reference)
    published = build_model("t3d", 3, {"frames": (20, 1, 64, 64)}, {})  # the published input: 20 grey 64x64
    assert published({"frames": torch.rand(2, 20, 1, 64, 64)}).shape == (2, 3)
    with pytest.raises(MerecError, match="too small for its 3x3x3 stem"):
        build_model("t3d", 3, {"frames": (2, 1, 64, 64)}, {})


def test_r3d_is_torchvisions_video_resnet_on_the_frame_volume() -> None:
    batch, _ = toy_batch(3)
    model = make("r3d").eval()
    reference = model(batch)
    assert torch.equal(model(batch | {"face": torch.zeros_like(batch["face"])}), reference)  # flow unused
    assert not torch.allclose(model(batch | {"frames": batch["frames"].flip(-1)}), reference)
    assert make("r3d", arch="r2plus1d_18").eval()(batch).shape == (3, 3)
    with pytest.raises(MerecError, match="too small for r3d_18"):
        build_model("r3d", 3, {"frames": (5, 1, 12, 12)}, {})
    assert build_model("r3d", 3, {"frames": (5, 1, 12, 12)}, {"extra_pool": False})(
        {"frames": torch.rand(2, 5, 1, 12, 12)}
    ).shape == (2, 3)


@pytest.mark.parametrize(("arch", "published"), [("r3d_18", 33_371_472), ("r2plus1d_18", 31_505_325)])
def test_r3d_backbones_have_torchvisions_sizes(arch: str, published: int) -> None:
    from merec.models.r3d import VideoResNet18

    with_kinetics_head = sum(p.numel() for p in VideoResNet18(arch).parameters()) + 512 * 400 + 400
    assert with_kinetics_head == published  # torchvision's figure for its 400-class Kinetics model


def test_r3d_starts_from_user_given_weights_checked_key_by_key(tmp_path) -> None:
    from merec.models.r3d import VideoResNet18

    torch.manual_seed(5)
    kinetics = VideoResNet18("r3d_18").state_dict()  # stands in for torchvision's Kinetics-400 file
    kinetics |= {"fc.weight": torch.randn(400, 512), "fc.bias": torch.zeros(400)}
    torch.save(kinetics, path := tmp_path / "r3d_18_kinetics.pth")
    model = make("r3d", weights=str(path))
    assert torch.equal(model.backbone.stem[0].weight, kinetics["stem.0.weight"])
    assert torch.equal(model.backbone.layer4[1].conv2[0].weight, kinetics["layer4.1.conv2.0.weight"])
    assert model.classifier.out_features == 3  # the file's 400-class layer is left out
    torch.save(VideoResNet18("r2plus1d_18").state_dict(), other := tmp_path / "r2plus1d.pth")
    with pytest.raises(MerecError, match=r"r2plus1d.pth\): checkpoint does not match"):
        make("r3d", weights=str(other))
    with pytest.raises(MerecError, match="checkpoint not found"):
        make("r3d", weights=str(tmp_path / "absent.pth"))


def test_bad_model_options_are_clear_errors() -> None:
    with pytest.raises(MerecError, match=r"train.models.c3d: unknown key\(s\) depth; allowed: .*widths"):
        build_model("c3d", 3, SHAPES, {"depth": 3})
    with pytest.raises(MerecError, match="multiple of heads"):
        build_model("aurel", 3, SHAPES, {"width": 10, "heads": 4})
    with pytest.raises(MerecError, match="halve the 16x16 face map"):
        build_model("c3d", 3, SHAPES, {"widths": [2, 2, 2, 2, 2]})
    with pytest.raises(MerecError, match="train.model: unknown model 'resnet'"):
        build_model("resnet", 3, SHAPES, {})
    assert set(model_options("aurel")) >= {"width", "heads", "gcn_layers", "dropout", "prior"}


def test_aurel_frame_stride_keeps_the_apex_and_stabilisation_removes_common_motion() -> None:
    batch, _ = toy_batch(3)
    model = make("aurel", frame_stride=2).eval()  # T = 4: frames 1 and 3 (the apex)
    reference = model(batch)
    unused = batch["rois"].clone()
    unused[:, :, [0, 2]] += 5.0
    assert torch.equal(model(batch | {"rois": unused}), reference)
    used = batch["rois"].clone()
    used[:, :, 3, 2] += 5.0
    assert not torch.allclose(model(batch | {"rois": used}), reference)
    # a head translation moves every ROI alike: stabilisation removes it from u and v
    drift = batch["rois"].clone()
    drift[:, :, :, :2] += torch.randn(3, 1, 4, 2, 1, 1)
    assert torch.allclose(make("aurel").eval()(batch | {"rois": drift}), make("aurel").eval()(batch), atol=1e-5)
    raw = make("aurel", stabilise=False).eval()
    assert not torch.allclose(raw(batch | {"rois": drift}), raw(batch), atol=1e-3)


def test_the_params_schema_lists_every_model_option() -> None:
    from merec.config import schema

    sections = schema()["properties"]["train"]["properties"]["models"]["properties"]
    assert sorted(sections) == sorted(MODELS)
    for name in MODELS:
        assert sorted(sections[name]["properties"]) == sorted(model_options(name)), name


# ---------------------------------------------------------------------------------------------
# mdmo: the classical baseline


def test_mdmo_feature_is_the_main_direction_mean_normalised_by_the_largest_roi() -> None:
    rois = torch.zeros(1, 2, 3, 3, 4, 4)
    rois[0, 0, :, 0, :3] = 2.0  # ROI 0: 12 of 16 pixels move right by 2, 4 pixels up by 5
    rois[0, 0, :, 1, 3] = 5.0
    rois[0, 1, :, 1] = -1.0  # ROI 1: every pixel moves down by 1
    features = mdmo_features(rois, bins=8, stabilise=False).view(2, 2)
    assert torch.allclose(features[0], torch.tensor([1.0, 0.0]))  # the main sector: right, length 2 -> 1
    assert torch.allclose(features[1], torch.tensor([0.0, -0.5]))  # relative to the largest ROI


def test_mdmo_fits_in_closed_form_and_separates_the_toy_classes() -> None:
    batch, labels = toy_batch(24)
    model = make("mdmo")
    accuracy = model.fit(batch, labels, torch.ones(3), seed=0)
    assert accuracy == 1.0
    assert (model(toy_batch(12, seed=5)[0]).argmax(1) == toy_batch(12, seed=5)[1]).float().mean() == 1.0
    again = make("mdmo")
    again.fit(batch, labels, torch.ones(3), seed=0)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True))


def test_mdmo_never_predicts_a_class_missing_from_training() -> None:
    batch, labels = toy_batch(24)
    keep = labels != 2
    model = make("mdmo")
    model.fit({"rois": batch["rois"][keep]}, labels[keep], torch.ones(3), seed=0)
    assert set(model(batch).argmax(1).tolist()) <= {0, 1}


def test_htnet_tiles_the_eye_and_mouth_regions_and_leaves_out_the_rest() -> None:
    from merec.models.htnet import region_image

    apex = torch.arange(28 * 28, dtype=torch.float32).view(1, 1, 28, 28).repeat(1, 3, 1, 1)
    tiled = region_image(apex, LANDMARKS)
    assert tiled.shape == (1, 3, 28, 28)
    # the image-left eye's crop is centred on (0.32, 0.38) x 28 = (9, 10.6): rows 4..17, columns 2..15
    assert torch.equal(tiled[0, 0, :14, :14], apex[0, 0, 4:18, 2:16])
    # a mouth corner near the border is clamped: the crop stays inside the map
    low = LANDMARKS.clone()
    low[0, 48] = torch.tensor([0.0, 1.0])
    assert torch.equal(region_image(apex, low)[0, 0, 14:, :14], apex[0, 0, 14:, :14])


def test_htnet_has_the_published_size_and_regions_attention_changes_only_the_mixing() -> None:
    with torch.device("meta"):
        published = build_model("htnet", 3, {"apex": (3, 32, 32)}, {})
    assert sum(p.numel() for p in published.parameters()) == pytest.approx(139.6e6, rel=0.002)
    batch, _ = toy_batch(4)
    torch.manual_seed(0)
    alone = make("htnet").eval()
    torch.manual_seed(0)
    regions = make("htnet", blocks="regions").eval()
    assert [n for n, _ in alone.named_parameters()] == [n for n, _ in regions.named_parameters()]
    assert not torch.allclose(alone(batch), regions(batch))  # same weights, tokens now attend to each other


def test_capsule_has_the_published_layout_and_loads_a_torchvision_resnet18_trunk(tmp_path) -> None:
    with torch.device("meta"):
        published = build_model("capsule", 3, {"frames": (13, 1, 64, 64)}, {})
    assert published.routes.shape == (1152, 3, 16, 8)  # 32 x 6 x 6 primary capsules of 8-D, 16-D class capsules
    assert published.trunk.state_dict()["layer3.0.conv1.weight"].shape == (256, 128, 3, 3)
    small = make("capsule")
    state = small.trunk.state_dict() | {"fc.weight": torch.zeros(1000, 16), "layer4.0.conv1.weight": torch.zeros(1)}
    torch.save({k: v.clone().fill_(0.5) if k == "conv1.weight" else v for k, v in state.items()}, tmp_path / "r18.pth")
    loaded = make("capsule", weights=str(tmp_path / "r18.pth"))
    assert torch.all(loaded.trunk.conv1.weight == 0.5)
    del state["layer1.0.bn1.weight"]
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(MerecError, match=r"(?s)capsule.weights .*bad.pth.*missing keys: layer1.0.bn1.weight"):
        make("capsule", weights=str(tmp_path / "bad.pth"))


def test_capsule_scores_are_lengths_trained_by_the_margin_loss() -> None:
    from merec.models.capsule import MarginLoss, dynamic_routing

    lengths = make("capsule").eval()(toy_batch(4)[0])
    assert ((lengths >= 0) & (lengths < 1)).all()
    probabilities = make("capsule").probabilities(lengths)
    assert torch.allclose(probabilities.sum(dim=1), torch.ones(4))
    loss = MarginLoss(torch.ones(3), 0.9, 0.1, 0.5)
    perfect = torch.tensor([[0.95, 0.05, 0.0]])
    assert float(loss(perfect, torch.tensor([0]))) == 0.0
    assert float(loss(perfect, torch.tensor([1]))) == pytest.approx((0.9 - 0.05) ** 2 + 0.5 * (0.95 - 0.1) ** 2)
    # routing sends an input capsule's vote where the others agree
    votes = torch.zeros(1, 3, 2, 4)
    votes[0, :, 0] = torch.tensor([1.0, 0, 0, 0])
    votes[0, 0, 1] = torch.tensor([0, 1.0, 0, 0])
    out = dynamic_routing(votes, 3)
    assert out[0, 0].norm() > out[0, 1].norm()


def test_dsnca_has_two_published_capsule_front_ends_and_reads_both_apexes(tmp_path) -> None:
    with torch.device("meta"):
        published = build_model("dsnca", 3, {"frames": (13, 1, 64, 64), "frontal": (1, 64, 64)}, {})
    assert published.routes.shape == (1152, 3, 16, 8)  # one set of class capsules over the fused maps
    assert published.primary.in_channels == 512  # 256 channels from each stream
    batch, _ = toy_batch(4)
    model = make("dsnca").eval()
    with torch.no_grad():
        scores = model(batch)
        assert ((scores >= 0) & (scores < 1)).all()
        assert not torch.allclose(model(batch | {"frontal": torch.flip(batch["frontal"], dims=[-2])}), scores)
        assert not torch.allclose(model(batch | {"frames": torch.flip(batch["frames"], dims=[-2])}), scores)
    trunk = model.streams["aligned"][0].state_dict()
    torch.save({k: v.clone().fill_(0.5) if k == "conv1.weight" else v for k, v in trunk.items()}, tmp_path / "r18.pth")
    loaded = make("dsnca", weights=str(tmp_path / "r18.pth"))
    assert all(torch.all(loaded.streams[name][0].conv1.weight == 0.5) for name in ("aligned", "frontal"))


def test_every_model_is_a_schema_choice_with_its_own_options_section() -> None:
    from merec.config import schema

    train = schema()["properties"]["train"]["properties"]
    assert train["model"]["enum"] == list(MODELS)
    assert set(train["models"]["properties"]) == set(MODELS)
