"""Sampling from the AR world model: logits processing, the plain KV-cache loop, speculative decoding with
copy-last-frame (and Jacobi-refined) drafts, and sliding-window rollouts longer than the trained context.

All functions take logits shaped (B, G, K): G independent groups (the FSQ digits, or one group of 64k ids)
whose product is the token distribution. Temperature, top-k and top-p act on each group (for the full head
that is the usual vocabulary-wide filtering). temperature=0 means greedy (argmax per group = argmax of the
product). Randomness comes only from the `torch.Generator` passed in, so a seed fixes the output.

Speculative decoding (Leviathan et al. 2023, "Fast Inference from Transformers via Speculative Decoding")
with a deterministic draft: the draft for the token at (t, h, w) is the token already generated at
(t-1, h, w) - video is mostly static from one latent frame to the next, like prompt-lookup decoding in text.
Each pass feeds the pending token plus L drafts; a draft x is accepted with probability p(x) (the target
probability after filtering), and on the first rejection the token is drawn from p with x removed
(renormalised). With a point-mass draft this is exactly the target distribution; with temperature 0 it
returns exactly the tokens of the plain loop. With `jacobi`, positions after a rejection keep the argmax
the pass computed for them as their next draft (Jacobi decoding, Santilli et al. 2023): any draft fixed
before its acceptance test keeps the output distribution exact.

CPU cost. At batch 1 a step is bound by reading the weights and by per-op dispatch, not by arithmetic, so a
pass over 1 + L drafts costs little more than a pass over one token (benchmarks/ar.py). The loop keeps the
per-pass work small: RoPE tables once per window, the greedy path straight from the argmax (no probabilities),
inference mode; `gpt.quantize_int8` gives an int8 copy of the model for CPU decoding (a quarter of the bytes).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from worldsmith.wfm.gpt import GPT, grid_positions


@dataclass
class SamplingConfig:
    temperature: float = 1.0
    top_k: int = 0          # 0: off
    top_p: float = 1.0      # 1.0: off
    draft: int = 0          # speculative draft length per pass (0: the plain one-token loop)
    jacobi: bool = True     # refine drafts past a rejection with the pass's own argmax (else: copies only)
    seed: int = 0


# ------------------------------------------------------------------------------------------- logits
def filtered_probs(logits: torch.Tensor, cfg: SamplingConfig) -> torch.Tensor:
    """(..., K) logits -> probabilities after temperature, top-k and top-p (per group)."""
    logits = logits.float()
    if cfg.temperature <= 0:
        return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).float()
    logits = logits / cfg.temperature
    if cfg.top_k and cfg.top_k < logits.shape[-1]:
        kth = logits.topk(cfg.top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = logits.softmax(-1)
    if cfg.top_p < 1.0:
        sorted_p, idx = probs.sort(-1, descending=True)
        before = sorted_p.cumsum(-1) - sorted_p          # mass strictly above each entry
        keep_sorted = before < cfg.top_p                   # always keeps the most likely entry
        keep = torch.zeros_like(keep_sorted).scatter(-1, idx, keep_sorted)
        probs = probs * keep
        probs = probs / probs.sum(-1, keepdim=True)
    return probs


def sample_groups(probs: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
    """(..., G, K) probabilities -> (..., G) sampled class per group."""
    flat = probs.reshape(-1, probs.shape[-1])
    return torch.multinomial(flat, 1, generator=gen).view(probs.shape[:-1])


def residual_sample(probs: torch.Tensor, draft: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
    """Sample digits y ~ prod_g p_g conditioned on y != draft (exactly, no rejection loop).

    Go through the groups in order while y still equals the draft: keeping the draft's digit g is allowed
    only if a later group can still differ, so its weight is p_g(x_g) * (1 - prod_{g'>g} p_g'(x_g')); any
    other digit has weight p_g(v) and frees the later groups to be sampled plainly.
    probs (B, G, K), draft (B, G) -> (B, G)."""
    b, g, _ = probs.shape
    p_draft = probs.gather(-1, draft.unsqueeze(-1)).squeeze(-1)            # (B, G)
    # tail[:, i] = prod_{j > i} p_j(x_j)
    tail = torch.ones_like(p_draft)
    for i in range(g - 2, -1, -1):
        tail[:, i] = tail[:, i + 1] * p_draft[:, i + 1]
    free = sample_groups(probs, gen)                                         # used once a digit differs
    out = torch.empty_like(draft)
    equal = torch.ones(b, dtype=torch.bool, device=probs.device)
    for i in range(g):
        w = probs[:, i].clone()
        w.scatter_(-1, draft[:, i:i + 1], (p_draft[:, i] * (1 - tail[:, i])).unsqueeze(-1))
        w = w.clamp(min=0)
        bad = w.sum(-1) <= 0                                                 # p(draft) == 1: nothing else possible
        w[bad] = probs[bad, i]
        cond = sample_groups(w.unsqueeze(1), gen).squeeze(1)
        out[:, i] = torch.where(equal, cond, free[:, i])
        equal = equal & (out[:, i] == draft[:, i])
    return out


# ------------------------------------------------------------------------------------------- decoding
@dataclass
class Stats:
    passes: int = 0          # forward passes (prefills included)
    tokens: int = 0          # tokens generated
    accepted: int = 0        # speculative drafts accepted


@torch.no_grad()
def generate(model: GPT, prompt: torch.Tensor, frames: int, cfg: SamplingConfig = SamplingConfig(),
             text: torch.Tensor | None = None, cond: torch.Tensor | None = None,
             window: int | None = None, shift: int | None = None, stats: Stats | None = None) -> torch.Tensor:
    """video2world: prompt (B, k, H, W) token ids of the first k >= 0 latent frames -> (B, k + frames, H, W).

    One loop serves both decoders. Each pass feeds the input of the next unknown token (the last known
    token, or the start-of-video token) plus L drafts, L = 0 for the plain KV-cache loop and up to
    `cfg.draft` for speculative decoding; it yields L + 1 distributions, accepts a prefix of the drafts,
    draws one more token, and truncates the cache to what was accepted.

    Rollouts longer than `window` latent frames (default: the trained grid's T) slide the window by
    re-encoding: when the next token would start frame `window`, the oldest `shift` frames (default
    window // 2, at least 1) are dropped and the cache is rebuilt over the kept frames with positions
    restarting at t = 0, so every query sees exactly the positions and start-of-video token it was trained
    with; that costs one prefill per `shift` generated frames. `cond` (B, k + frames, C) holds one
    conditioning vector per latent frame of the whole rollout; `text` (B, 384) a prompt embedding."""
    # inference mode skips autograd's per-op bookkeeping on the CPU step; the clone hands back an ordinary
    # tensor (inference tensors refuse in-place updates outside inference mode)
    with torch.inference_mode():
        out = _generate(model, prompt, frames, cfg, text, cond, window, shift, stats)
    return out.clone()


def _generate(model, prompt, frames, cfg, text, cond, window, shift, stats) -> torch.Tensor:
    model.eval()
    c = model.cfg
    b, k, h, w = prompt.shape
    if (h, w) != (c.grid[1], c.grid[2]):
        raise ValueError(f"prompt grid {h}x{w} does not match the model's {c.grid[1]}x{c.grid[2]}")
    window = window or c.grid[0]
    shift = max(1, min(shift or window // 2, window - 1)) if window > 1 else 1
    hw, total = h * w, (k + frames) * h * w
    dev = next(model.parameters()).device
    gen = torch.Generator(device=dev).manual_seed(cfg.seed)
    stats = stats if stats is not None else Stats()
    out = torch.zeros(b, total, dtype=torch.long, device=dev)
    out[:, : k * hw] = prompt.reshape(b, -1).to(dev)
    text_kv = model.text_kv(text.to(dev) if text is not None else None, b)
    cache = model.new_cache(b, window * hw + 1, device=dev)
    pos_window = grid_positions(window, h, w, device=dev)
    cos_w, sin_w = model.rope.tables(pos_window, model.codec.table.weight.dtype)   # once per rollout
    codec = model.codec
    base = 0                               # first latent frame of the current window
    n_done = k * hw                        # tokens known so far
    guess = torch.full((b, total), -1, dtype=torch.long, device=dev)   # Jacobi drafts (-1: use the copy)

    def forward(inputs: torch.Tensor, first_target: int) -> torch.Tensor:
        # the cache always holds the inputs of targets base*hw .. first_target-1, so rel == cache.length and
        # the model puts the start-of-video token at index 0 exactly when rel == 0 (sov=None)
        rel, n = first_target - base * hw, inputs.shape[1]
        # the copy prior reads the token one frame before each target, inside the window only (as trained)
        if rel >= hw:
            prev = out[:, first_target - hw: first_target - hw + n]
        else:
            src = torch.arange(first_target - hw, first_target - hw + n, device=dev)
            prev = torch.where(src >= base * hw, out[:, src.clamp(min=0)], torch.full_like(out[:, :1], -1))
        stats.passes += 1
        return model(inputs, pos_window[rel: rel + n], cond=None if cond is None else cond[:, base:],
                     cache=cache, text_kv=text_kv, prev_ids=prev, rope=(cos_w[rel: rel + n], sin_w[rel: rel + n]))

    def prefill() -> None:
        """Cache the inputs of targets base*hw .. n_done-1 (start-of-video, then known tokens)."""
        cache.reset()
        if n_done > base * hw:
            seq = out[:, base * hw: n_done - 1]
            forward(torch.cat([torch.zeros_like(out[:, :1]), seq], dim=1), base * hw)

    prefill()
    while n_done < total:
        if n_done == (base + window) * hw:          # window full: slide by re-encoding
            base += shift
            prefill()
        room = min(total, (base + window) * hw) - n_done - 1
        n_draft = max(0, min(cfg.draft, room, hw - 1)) if n_done - hw >= 0 else 0
        last = out[:, n_done - 1: n_done] if n_done > base * hw else torch.zeros_like(out[:, :1])
        drafts = out[:, n_done - hw: n_done - hw + n_draft]                      # copy of the previous frame
        if cfg.jacobi and n_draft:
            g = guess[:, n_done: n_done + n_draft]
            drafts = torch.where(g >= 0, g, drafts)
        logits = forward(torch.cat([last, drafts], dim=1) if n_draft else last, n_done)   # (B, L+1, G, K)
        if cfg.temperature <= 0:
            # greedy: no probabilities needed. A draft is accepted iff it is the argmax, and the token after
            # the accepted prefix is the argmax there (the draft itself wherever it was accepted)
            best = codec.ids(logits.argmax(-1))                                         # (B, L+1)
            m = int((best[:, :n_draft] == drafts).long().cumprod(1).sum(1).min()) if n_draft else 0
            out[:, n_done: n_done + m + 1] = best[:, : m + 1]
            if cfg.jacobi and m < n_draft:
                guess[:, n_done + m + 1: n_done + n_draft + 1] = best[:, m + 1:]
            cache.truncate(cache.length - (n_draft - m))
            n_done += m + 1
            stats.tokens += m + 1
            stats.accepted += m
            continue
        probs = filtered_probs(logits, cfg)                                             # (B, L+1, G, K)
        if n_draft == 0:
            out[:, n_done] = codec.ids(sample_groups(probs[:, 0], gen))
            n_done += 1
            stats.tokens += 1
            continue
        d_digits = codec.digits(drafts)
        p_x = probs[:, :n_draft].gather(-1, d_digits.unsqueeze(-1)).squeeze(-1).prod(-1)   # (B, L)
        if cfg.temperature <= 0:
            accept = p_x > 0.5                    # one-hot probabilities: the draft is the argmax
        else:
            accept = torch.rand(p_x.shape, generator=gen, device=dev) < p_x
        run = accept.long().cumprod(1).sum(1)     # accepted prefix per sample
        m = int(run.min())                        # common prefix kept for the whole batch
        out[:, n_done: n_done + m] = drafts[:, :m]
        p_m = probs[:, m]
        if m == n_draft:                          # all drafts accepted: a free draw from the next distribution
            nxt = codec.ids(sample_groups(p_m, gen))
        else:                                     # first rejection at m for some samples: residual draw there
            res = p_m.argmax(-1) if cfg.temperature <= 0 else residual_sample(p_m, d_digits[:, m], gen)
            nxt = torch.where(run == m, codec.ids(res), drafts[:, m])
        out[:, n_done + m] = nxt
        if cfg.jacobi and m < n_draft:
            # positions past the rejection were predicted from a partly wrong prefix: still better drafts
            # than the copies (Jacobi iteration, Santilli et al. 2023); they are fixed before their check
            guess[:, n_done + m + 1: n_done + n_draft + 1] = codec.ids(probs[:, m + 1:].argmax(-1))
        cache.truncate(cache.length - (n_draft - m))
        n_done += m + 1
        stats.tokens += m + 1
        stats.accepted += m
    return out.view(b, k + frames, h, w)
