"""The tuned member of the semantic check: MiniLM with LoRA adapters (Hu et al. 2021, arXiv 2106.09685) on
its layers (from round 11 all six), trained end to end with a classifier head on the labelled prompts (issue 7,
round 6).

The frozen-feature heads in `semantic.py` can only re-weigh what MiniLM's sentence-similarity training kept;
they gave "Graphic dismemberment of a body with a chainsaw" P(unsafe) 0.06 and "A person sleeping peacefully
in bed" 0.97 out of fold. Adapting the encoder lets it learn which words carry harm. Rounds 6-12 averaged
the two members' logits (`semantic.SemanticClassifier.score`); since round 13 the shipped weights hold this
member alone, the heads having pulled its ranking down. Figures in `SemanticConfig.tune_rank` and `frozen_weight`.

The adapters are zero-initialised (B = 0), so an untrained member reads exactly MiniLM's features; at load
time they are merged into a private copy of the encoder, so the member costs one more plain MiniLM forward
pass per reading.
The shared encoder in `worldsmith.text` (world-model captions, curation) is never modified.
"""

from __future__ import annotations

import copy
import hashlib
import math
import random
from dataclasses import dataclass, field

import numpy as np

LORA_ALPHA_PER_RANK = 2.0  # alpha = 2 * rank: the adapter's scale alpha / rank stays 2 at any rank


def lora_targets(from_layer: int) -> tuple[str, ...]:
    """Module-name prefixes of MiniLM's encoder layers from `from_layer` (0-based) to the last (5)."""
    return tuple(f"encoder.layer.{k}." for k in range(from_layer, 6))


def _adapted_copy(rank: int, from_layer: int):
    """A private copy of the shared MiniLM with fresh (zero-effect) LoRA adapters on the chosen layers."""
    from worldsmith.text import _model
    from worldsmith.train.lora import apply_lora

    bert = copy.deepcopy(_model()[0].auto_model)
    apply_lora(bert, rank=rank, alpha=LORA_ALPHA_PER_RANK * rank, targets=lora_targets(from_layer))
    return bert


@dataclass
class TunedMember:
    """Adapters (name -> array, `lora_state`'s keys) plus one classifier head on the adapted encoder's
    pooled layers; the head is (weight, bias, hidden) as `SemanticClassifier`'s heads."""
    lora: dict[str, np.ndarray]
    rank: int
    from_layer: int
    head: tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray] | None]
    _encoder: object = field(default=None, repr=False, compare=False)  # built on first use

    @property
    def cache_key(self) -> str:
        """Distinguishes this encoder's cached vectors from the shared model's and other members'."""
        h = hashlib.sha256()
        for name in sorted(self.lora):
            h.update(name.encode())
            h.update(np.ascontiguousarray(self.lora[name], dtype=np.float32).tobytes())
        return "lora:" + h.hexdigest()[:16]

    def encoder(self):
        """The adapted MiniLM, adapters merged into the weights (built once)."""
        if self._encoder is None:
            import torch

            from worldsmith.train.lora import merge_lora

            bert = _adapted_copy(self.rank, self.from_layer)
            state = {k: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in self.lora.items()}
            missing = set(lora_state(bert)) ^ set(state)
            if missing:
                raise ValueError(f"tuned member: adapter names do not match MiniLM's layers: {sorted(missing)[:3]}")
            bert.load_state_dict(state, strict=False)
            merge_lora(bert)
            self._encoder = bert.eval()
        return self._encoder

    def features(self, texts: list[str], layers: tuple[int, ...]) -> np.ndarray:
        from worldsmith.text import embed_texts_layers

        return embed_texts_layers(texts, layers, encoder=self.encoder(), cache_key=self.cache_key)


def to_numpy(t) -> np.ndarray:
    """A trained tensor as a CPU array of its own (from any device)."""
    return t.detach().cpu().numpy().copy()


def lora_state(bert) -> dict:
    """The adapter tensors of `bert` by parameter name (only these train)."""
    return {k: v for k, v in bert.state_dict().items() if ".lora_a" in k or ".lora_b" in k}


def length_grouped_batches(pool: list, lengths: list[int], batch_size: int, rng: random.Random,
                           chunk_batches: int = 16) -> list[list]:
    """`pool` (already shuffled) in batches of texts of similar token length: cut into chunks of `chunk_batches`
    batches, each chunk sorted by length and cut into batches, then the order of all batches shuffled. A batch is
    padded to its longest text; on the guard's training texts (respellings such as "k i l l" run long) random
    batches padded 2.03x the real tokens, these 1.10x (round 9, 17085 texts). The number of batches is unchanged,
    and which texts meet in a chunk is still random."""
    chunk = batch_size * chunk_batches
    batches = []
    for c in range(0, len(pool), chunk):
        idx = sorted(range(c, min(c + chunk, len(pool))), key=lambda i: lengths[i])
        batches += [[pool[i] for i in idx[s:s + batch_size]] for s in range(0, len(idx), batch_size)]
    rng.shuffle(batches)
    return batches


def fit_tuned(groups: list[tuple[list[str], int]], cfg, seed: int, n_classes: int, progress=None) -> tuple[TunedMember, float]:
    """Train adapters and a head on `groups` (per prompt: its training texts and label, as
    `semantic._training_groups` gives). Each epoch draws `adversarial_per_prompt + 1` of each prompt's
    texts (its readings and respellings), so an epoch costs the same whatever the number of readings.
    AdamW (adapters `tune_lr`, head `tune_head_lr`), 30-step warmup then cosine; class weights as the
    frozen heads'. Returns the member and the mean loss of the last 20 steps."""
    import torch

    from worldsmith.text import _model, pool_layers

    torch.manual_seed(seed)
    bert = _adapted_copy(cfg.tune_rank, cfg.tune_from_layer)  # on the shared model's device (`text.use_device`)
    device = next(bert.parameters()).device
    tokenizer, max_len = _model().tokenizer, _model().max_seq_length
    width = cfg.hidden or 64  # the member always has a hidden layer, like the shipped frozen heads
    first = torch.nn.Linear(384 * len(cfg.layers), width)
    last = torch.nn.Linear(width, n_classes)
    head = torch.nn.Sequential(first, torch.nn.ReLU(), last).to(device)
    ys = torch.tensor([y for _, y in groups])
    counts = torch.bincount(ys, minlength=n_classes).float().clamp(min=1)
    class_w = 1.0 / counts
    class_w[1:] /= n_classes - 1
    class_w = (class_w / class_w.mean()).to(device)
    adapters = [p for p in bert.parameters() if p.requires_grad]
    opt = torch.optim.AdamW([{"params": adapters, "lr": cfg.tune_lr},
                             {"params": list(head.parameters()), "lr": cfg.tune_head_lr}], weight_decay=0.01)
    draws = cfg.adversarial_per_prompt + 1
    steps_per_epoch = math.ceil(sum(min(draws, len(ts)) for ts, _ in groups) / cfg.tune_batch)
    total = cfg.tune_epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 30) * 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    rng = random.Random(seed)
    bert.train()
    step, recent = 0, []
    for _ in range(cfg.tune_epochs):
        pool = [(t, y) for ts, y in groups for t in rng.sample(ts, min(draws, len(ts)))]
        rng.shuffle(pool)
        lengths = [len(ids) for ids in tokenizer([t for t, _ in pool], truncation=True, max_length=max_len)["input_ids"]]
        for batch in length_grouped_batches(pool, lengths, cfg.tune_batch, rng):
            enc = tokenizer([t for t, _ in batch], padding=True, truncation=True, max_length=max_len,
                            return_tensors="pt").to(device)
            feats = pool_layers(bert(**enc, output_hidden_states=True).hidden_states, enc["attention_mask"], cfg.layers)
            loss = torch.nn.functional.cross_entropy(head(feats) / cfg.temperature,
                                                     torch.tensor([y for _, y in batch], device=device), weight=class_w)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            recent = (recent + [loss.item()])[-20:]
            if progress:
                progress(step, total, loss.item())
    lora = {k: to_numpy(v) for k, v in lora_state(bert).items()}
    head_arrays = (to_numpy(last.weight), to_numpy(last.bias), (to_numpy(first.weight), to_numpy(first.bias)))
    last_loss = float(np.mean(recent)) if recent else 0.0
    return TunedMember(lora, cfg.tune_rank, cfg.tune_from_layer, head_arrays), last_loss
