"""Auditing an image classifier (a face recogniser): MI-Face with the weights (Fredrikson et
al., CCS 2015), the score and top-k black-box attacks, label-only boundary repulsion (after
BREP-MI, Kahla et al., CVPR 2022), and, where a face prior learnt from other people fits the
model, the same three threat models searched in that prior's latent space (GMI, Zhang et al.,
CVPR 2020); each judged by the independent face recogniser beside its label-permuted baseline."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from mirisk.access.oracle import Oracle, QueryAccess
from mirisk.access.policies import parse_policy
from mirisk.access.whitebox import WhiteBoxAccess
from mirisk.artifacts import npz_bytes, read_json
from mirisk.audit.case import AuditSubject, SubjectOptions, UnitResult, register_kind
from mirisk.audit.plan import AttackUnit, AuditPlan, epsilons, flag, seed_of, whole
from mirisk.audit.verdict import image_attack_level, image_recommendations, image_success
from mirisk.data.faces import load_faces
from mirisk.data.images import ImageDataset
from mirisk.errors import MiriskError
from mirisk.execution.backends import Backend
from mirisk.figures import reconstruction_grid
from mirisk.metrics.identification import ImageIdentification
from mirisk.metrics.vulnerability import image_vulnerability, most_at_risk_people
from mirisk.models.architectures import ARCHITECTURES
from mirisk.models.imported import ImportSpec
from mirisk.models.loading import load_image_target, target_split
from mirisk.models.target import TargetModel
from mirisk.pipelines.face_attack import attack_faces
from mirisk.pipelines.face_attacks import (
    LABEL_ATTACKS, LATENT_ATTACKS, SCORE_ATTACKS, WHITE_BOX_ATTACKS, build_face_attack,
)
from mirisk.pipelines.face_sweep import SWEEP_ATTACKS, SweepAttack, classic_sweep_attacks, epsilon_recipes, face_sweep
from mirisk.pipelines.faces import LINEUP_HEADING, attacked_people, face_gallery
from mirisk.pipelines.matrix import policy_cost
from mirisk.priors.store import BUNDLED_PRIOR, FacePrior, check_prior_fits, load_prior
from mirisk.threats import AccessLevel

# The DP-SGD budgets retrained and measured by default: on the 280 bundled face photos a
# model keeps some accuracy only at large epsilon (BENCHMARKS.md).
IMAGE_EPSILONS = (50.0, 8.0)
# White-box MI-Face runs twice: from black (the paper's start, the best for re-identification)
# and from mid-grey, whose reconstructions the independent judge recognises about twice as
# often on the softmax and MLP families (BENCHMARKS.md, "MI-Face settings judged").
MID_GREY_START = 0.5
# The output policies compared with full scores by default (beside top-k and labels only,
# which the threat models already test): rounding, noise and a reverse sigmoid.
IMAGE_POLICIES = ("round:2", "round:1", "noise:laplace:0.05", "reverse-sigmoid:0.5,0.1")


def extra_policies(plan: AuditPlan) -> list[str]:
    """The plan's output policies that its threat models do not test already."""
    tested = {unit.policy for unit in plan.units}
    return [spec for spec in plan.settings.get("policies", []) if spec not in tested]


def strongest_unit(plan: AuditPlan, results: dict[str, dict[str, Any]], attacks: tuple[str, ...],
                   policy: str | None) -> AttackUnit | None:
    """Of the plan's local units running one of ``attacks`` through ``policy`` (None: with
    the weights), the one whose result leaks most (the verdict's measure; the first planned
    on a tie), or None when there is none."""
    units = [unit for unit in plan.units if unit.attack in attacks and unit.policy == policy
             and not unit.params.get("gateway") and unit.id in results]
    return max(units, key=lambda unit: image_success(results[unit.id]["metrics"]), default=None)


def policy_units(plan: AuditPlan, results: dict[str, dict[str, Any]]) -> list[AttackUnit]:
    """The plan's extra output policies as attack units: through each policy that still
    reveals scores, the score attack that leaked most through full scores; through the
    others, the label-only attack that leaked most (the DCT attacks where none ran)."""
    units = []
    for spec in extra_policies(plan):
        access = parse_policy(spec).access
        label_only = access is AccessLevel.LABEL_ONLY
        strongest = strongest_unit(plan, results, LABEL_ATTACKS if label_only else SCORE_ATTACKS,
                                   "label" if label_only else "scores")
        if strongest is None:
            attack, key = ("labelonly", "labelonly_iterations") if label_only else ("blackbox", "blackbox_iterations")
            params: dict[str, Any] = {"iterations": plan.settings[key], "budget": plan.budget}
        else:
            attack, params = strongest.attack, dict(strongest.params)
        slug = "".join(character if character.isalnum() or character == "." else "-" for character in spec)
        units.append(AttackUnit(f"policy-{slug}-{attack}", attack, access, spec, params))
    return units


def sweep_attacks(plan: AuditPlan, results: dict[str, dict[str, Any]]) -> tuple[SweepAttack, ...]:
    """What each DP-SGD retrain is attacked with: at each sweep level (white-box, scores),
    the audit's unit that leaked most there, or the pixel-space attack at the plan's steps
    where the plan has none at that level."""
    classic = dict(zip(SWEEP_ATTACKS, classic_sweep_attacks(plan.settings["miface_iterations"],
                                                            plan.settings["blackbox_iterations"]), strict=True))
    chosen = []
    for access, attacks, policy in (("white-box", WHITE_BOX_ATTACKS, None), ("scores", SCORE_ATTACKS, "scores")):
        unit = strongest_unit(plan, results, attacks, policy)
        chosen.append(classic[access] if unit is None else SweepAttack(
            access, unit.id, unit.attack, unit.params["iterations"], unit.params.get("prior"), unit.params.get("start")))
    return tuple(chosen)


# The generative attacks' default steps (BENCHMARKS.md, "Generative attacks"): GMI's Adam
# steps; NES steps of 40 queries a person (2,000 in all); boundary-repulsion steps.
GENERATIVE_ITERATIONS, GENERATIVE_SCORES_ITERATIONS, GENERATIVE_LABELONLY_ITERATIONS = 100, 50, 100
GENERATIVE_ATTACKS = {AccessLevel.WHITE_BOX: ("white-box-generative", "generative", None, "generative_iterations"),
                      AccessLevel.SCORES: ("scores-generative", "generative-scores", "scores",
                                           "generative_scores_iterations"),
                      AccessLevel.LABEL_ONLY: ("label-only-generative", "generative-labelonly", "label",
                                               "generative_labelonly_iterations")}


def generative_units(accesses: tuple[AccessLevel, ...], budget: int | None, config: dict[str, Any],
                     settings: dict[str, Any]) -> tuple[list[AttackUnit], str | None]:
    """The latent-space attacks for the threat models asked (white-box, scores, label-only),
    or none and why: the plan context says whether the prior fits the model; through a live
    gateway only the older attack is run at the deployed level."""
    fit = config.get("prior_fit", "the plan was made without the model, so no face prior was checked against it")
    if fit != "fits":
        return [], fit
    units = []
    for access in accesses:
        if access not in GENERATIVE_ATTACKS or (access is not AccessLevel.WHITE_BOX and "deployment" in config):
            continue
        unit_id, attack, policy, key = GENERATIVE_ATTACKS[access]
        params = {"iterations": settings[key], "prior": str(config.get("prior", BUNDLED_PRIOR))}
        if policy is not None:
            params["budget"] = budget
        units.append(AttackUnit(unit_id, attack, access, policy, params))
    return units, None


def shared_prior(subject: AuditSubject, source: str) -> FacePrior:
    """The face prior at ``source``, loaded once per audit and kept on the subject."""
    key = ("face-prior", source)
    if key not in subject.shared:
        subject.shared[key] = load_prior(source)
    return subject.shared[key]


class ImageCase:
    """An image classifier and the photos of the people it knows."""

    name = "image"
    title = "image classifier"
    default_accesses = "white-box,scores,top-k,label-only"
    config_keys = frozenset({"top_k", "people", "baseline", "miface_iterations", "blackbox_iterations",
                             "labelonly_iterations", "policies", "generative", "prior", "generative_iterations",
                             "generative_scores_iterations", "generative_labelonly_iterations"})
    deployable = True
    report_labels = {"records": "photos", "person": "person", "judged": True, "at_risk": "people",
                     "dp_table": "attacks"}

    def claims(self, path: Path) -> bool:
        return True  # an image model folder or a model file, whose format the loader checks

    def load_model(self, path: Path, spec: ImportSpec | None) -> TargetModel:
        return load_image_target(path, spec)

    def load(self, model: str | Path, data: str | None, options: SubjectOptions) -> AuditSubject:
        if options.aux is not None or options.sensitive is not None:
            raise MiriskError("--aux and --sensitive apply to tabular models; this is an image classifier")
        if data is not None and Path(data).is_file():
            raise MiriskError(f"{data} is a file; an image classifier is audited on a folder of photos "
                              "(one sub-folder per person) or bundled:att_faces")
        metadata = Path(model) / "target.json"
        recorded = read_json(metadata).get("data", {}) if metadata.is_file() else {}
        dataset = load_faces(data if data is not None else recorded.get("source"))
        return self.subject(load_image_target(model, options.spec, dataset), dataset)

    def subject(self, target: TargetModel, dataset: ImageDataset) -> AuditSubject:
        """The subject for a model and photos already in memory, checked against each other."""
        target_split(target, dataset)
        return AuditSubject(self.name, target, dataset=dataset)

    def describe(self, subject: AuditSubject) -> dict[str, Any]:
        target, dataset = subject.target, subject.dataset
        return {"kind": self.title, "architecture": target.architecture, "classes": target.n_classes,
                "metrics": target.metrics, "provenance": target.provenance,
                "data": {"source": dataset.source, "images": len(dataset.images),
                         "training_split": "unknown" if target.data.get("split") == "unknown" else "recorded"}}

    def check_plan(self, plan: AuditPlan, subject: AuditSubject) -> None:
        people = plan.settings.get("people")
        if people is not None and people > subject.target.n_classes:
            raise MiriskError(f"people = {people}, but the model knows only {subject.target.n_classes} people")
        served = [unit.policy for unit in plan.units if unit.policy is not None and not unit.params.get("gateway")]
        for spec in (*served, *extra_policies(plan)):
            parse_policy(spec).check_classes(subject.target.n_classes)

    def plan_context(self, subject: AuditSubject, config: dict[str, Any]) -> dict[str, Any]:
        """Whether the face prior (``prior``, the shipped one by default) fits this model: the
        same image shape and none of the model's people among those it was learnt from. A
        prior that cannot be read is refused; one that does not fit leaves the generative
        attacks untested, with the reason."""
        if not flag(config.get("generative", True), "generative"):
            return {"prior_fit": "switched off by the config (generative = false)"}
        prior = load_prior(str(config.get("prior", BUNDLED_PRIOR)))
        try:
            check_prior_fits(prior, subject.target)
        except MiriskError as error:
            how = "" if "mirisk train prior" in str(error) else "; train one with `mirisk train prior --data DIR`"
            return {"prior_fit": f"no fitting face prior: {error}{how}, and give it as prior = \"DIR\" in the audit "
                                 "config"}
        return {"prior_fit": "fits"}

    def plan_units(self, accesses, budget, config, gradients):
        top_k = whole(config, "top_k", 3)
        settings = {
            "seed": seed_of(config),
            "miface_iterations": whole(config, "miface_iterations", 1000),
            "blackbox_iterations": whole(config, "blackbox_iterations", 100),
            "labelonly_iterations": whole(config, "labelonly_iterations", 100),
            "top_k": top_k,
            "people": whole(config, "people", 0) if "people" in config else None,
            "baseline": flag(config.get("baseline", True), "baseline"),
            "epsilons": epsilons(config, IMAGE_EPSILONS),
            "policies": [parse_policy(str(spec)).spec for spec in config.get("policies", IMAGE_POLICIES)],
            "generative_iterations": whole(config, "generative_iterations", GENERATIVE_ITERATIONS),
            "generative_scores_iterations": whole(config, "generative_scores_iterations",
                                                  GENERATIVE_SCORES_ITERATIONS),
            "generative_labelonly_iterations": whole(config, "generative_labelonly_iterations",
                                                     GENERATIVE_LABELONLY_ITERATIONS),
        }
        by_access = {
            AccessLevel.WHITE_BOX: AttackUnit("white-box-miface", "miface", AccessLevel.WHITE_BOX,
                                              params={"iterations": settings["miface_iterations"]}),
            AccessLevel.SCORES: AttackUnit("scores-blackbox", "blackbox", AccessLevel.SCORES, "scores",
                                           {"iterations": settings["blackbox_iterations"], "budget": budget}),
            AccessLevel.TOP_K: AttackUnit(f"top{top_k}-blackbox", "blackbox", AccessLevel.TOP_K, f"topk:{top_k}",
                                          {"iterations": settings["blackbox_iterations"], "budget": budget}),
            AccessLevel.LABEL_ONLY: AttackUnit("label-only-repulsion", "labelonly", AccessLevel.LABEL_ONLY, "label",
                                               {"iterations": settings["labelonly_iterations"], "budget": budget}),
        }
        deployment = config.get("deployment")
        if deployment is not None:  # the deployed access level goes through the live gateway, under its policy
            settings["deployment"] = deployment
            access = AccessLevel(deployment["access"])
            by_access[access] = replace(by_access[access], id=f"gateway-{by_access[access].id}",
                                        policy=deployment["policy"],
                                        params={**by_access[access].params, "gateway": True})
        skipped = {}
        if not gradients and AccessLevel.WHITE_BOX in accesses:
            accesses = tuple(access for access in accesses if access is not AccessLevel.WHITE_BOX)
            skipped["white-box"] = ("this model file gives no gradients (it can only be queried); import it as "
                                    "TorchScript or .pt2 to test a white-box attacker")
        units = [by_access[access] for access in accesses]
        if AccessLevel.WHITE_BOX in accesses:  # the start the judge recognises twice as often (BENCHMARKS.md)
            units.insert(units.index(by_access[AccessLevel.WHITE_BOX]) + 1, AttackUnit(
                "white-box-miface-grey", "miface", AccessLevel.WHITE_BOX,
                params={"iterations": settings["miface_iterations"], "start": MID_GREY_START}))
        generative, untested = generative_units(accesses, budget, config, settings)
        if untested:
            settings["untested"] = {"generative": untested}
        return [*units, *generative], skipped, settings

    def run_unit(self, unit: AttackUnit, settings: dict[str, Any], subject: AuditSubject,
                 redact: bool) -> tuple[dict[str, Any], dict[str, bytes]]:
        target, dataset, seed = subject.target, subject.dataset, settings["seed"]
        people = attacked_people(settings.get("people"), target.n_classes, seed)
        prior = shared_prior(subject, unit.params["prior"]) if unit.attack in LATENT_ATTACKS else None
        attack = build_face_attack(unit.attack, unit.params["iterations"], prior, unit.params.get("start"))
        access: Callable[[TargetModel], Any] = WhiteBoxAccess
        if unit.attack not in WHITE_BOX_ATTACKS:
            oracle: QueryAccess
            if unit.params.get("gateway"):
                if subject.remote is None:
                    raise MiriskError(f"unit {unit.id} attacks a live gateway; give --endpoint and --api-key")
                oracle = subject.remote
            else:
                oracle = Oracle(target, parse_policy(unit.policy), budget=unit.params.get("budget"))
            served, budget = oracle.policy.spec, unit.params.get("budget")

            def oracle_for(model: TargetModel) -> QueryAccess:  # the twin locally, under the policy served
                return oracle if model is target else Oracle(model, parse_policy(served), budget=budget)

            access = oracle_for

        report = attack_faces(target, dataset, attack, access, people=people, seed=seed,
                              baseline=settings.get("baseline", True), gallery=face_gallery(target, dataset, seed))
        result = report.result
        payload = report.payload
        if unit.params.get("gateway"):
            payload["deployment"] = {**settings["deployment"], "stopped_by_gateway": sorted(
                {reason for reason in result.stop_reasons if reason.startswith("gateway-")})}
        if unit.policy is not None:
            payload["policy_cost"] = policy_cost(target, dataset, unit.policy)
        if redact:
            return payload, {}
        measured = report.identification  # each person's name beside the judge's rank of them (a sample, or all)
        titles = [f"{target.class_names[label]} (judge rank {rank})"
                  for label, rank in zip(measured.labels, measured.judge.ranks, strict=True)]
        return payload, {
            "reconstructions.png": reconstruction_grid(
                report.originals, result.reconstructions.numpy(), titles,
                heading=f"{unit.id}: top: a training photo; bottom: the reconstruction (rank of the true person)"),
            "lineup.png": report.lineup_png(target.class_names, f"{unit.id}: {LINEUP_HEADING}"),
            "reconstructions.npz": npz_bytes(reconstructions=result.reconstructions.numpy(),
                                             labels=result.target_labels.numpy()),
        }

    def attack_level(self, metrics: dict[str, Any]) -> tuple[str, str]:
        return image_attack_level(metrics)

    def attack_strength(self, metrics: dict[str, Any]) -> float:
        return image_success(metrics)

    def headline(self, metrics: dict[str, Any]) -> dict[str, Any]:
        measured = ImageIdentification.from_json(metrics)
        judge_base, reid_base, base_name = measured.baselines()
        judge = measured.judge
        return {"identification_top1": measured.pixel_top1, "identification_top5": measured.pixel_top5,
                "reid_top1": measured.reid_top1, "reid_top1_ci": list(measured.reid_top1_ci),
                "ssim_mean": measured.ssim_mean, "chance_top1": measured.chance_top1,
                "judge_top1": judge.identification_top1, "judge_top1_ci": list(judge.identification_top1_ci),
                "judge_top5": judge.identification_top5, "face_rate": judge.face_rate,
                "baseline_judge_top1": judge_base, "baseline_reid_top1": reid_base, "baseline": base_name,
                "evaluator_disagreement": measured.disagreement.to_json()}

    def recommendations(self, plan, results, description, defences):
        return image_recommendations(plan, results, description["metrics"].get("test_accuracy"), defences)

    def vulnerability(self, subject: AuditSubject) -> dict[str, Any]:
        return image_vulnerability(subject.target, subject.dataset)

    def at_risk(self, plan: AuditPlan, subject: AuditSubject, results: dict[str, UnitResult]) -> Any:
        return most_at_risk_people({key: result.payload for key, result in results.items()},
                                   subject.target.class_names, rank_key="independent_rank")

    def retrainable(self, subject: AuditSubject) -> bool:
        target, source = subject.target, subject.dataset.source
        return (not target.provenance and target.architecture in ARCHITECTURES
                and "n_train_per_subject" in target.data and target.data.get("split") != "unknown"
                and (source.startswith("bundled:") or Path(source).is_dir()))  # the sweep reloads the photos

    def dp_sweep(self, plan: AuditPlan, subject: AuditSubject, results: dict[str, dict[str, Any]],
                 backend: Backend | None) -> list[dict[str, Any]]:
        target = subject.target
        return face_sweep(subject.dataset.source, target.architecture, epsilon_recipes(tuple(plan.settings["epsilons"])),
                          (int(target.data["n_train_per_subject"]),), sweep_attacks(plan, results),
                          plan.settings["seed"], backend=backend, people=plan.settings.get("people"))

    def query_checks(self, plan: AuditPlan) -> bool:
        return "deployment" not in plan.settings

    def policy_units(self, plan: AuditPlan, results: dict[str, dict[str, Any]]) -> list[AttackUnit]:
        return policy_units(plan, results)

    def chart_series(self, schema: str) -> tuple[list[tuple[str, str, str]], str]:
        if schema == "mirisk-report/2":
            return [("identification_top1", "chance_top1", "identification top-1 (pixel evaluator)")], "chance"
        return [("judge_top1", "baseline_judge_top1", "independent judge top-1"),
                ("reid_top1", "baseline_reid_top1", "re-identification from held-out photos")], \
            "label-permuted baseline"


register_kind(ImageCase())
