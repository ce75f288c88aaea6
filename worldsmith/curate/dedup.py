"""Global deduplication over the clips that passed the per-clip filters: exact, near, semantic.

Clips are visited in catalog order (input id, then start frame), and the first of a group of duplicates
is kept, so the result is a deterministic function of the per-input results whatever engine made them.
- exact: equal content hashes.
- near: mean Hamming distance between aligned keyframe dHashes <= `near_hamming` bits (of 64).
- semantic (SemDeDup, Abbas et al. 2023, arXiv 2303.09540): k-means on the L2-normalised embeddings, then
  inside each cluster a clip whose cosine similarity to an already kept clip exceeds the threshold is a
  duplicate. (SemDeDup keeps the clip farthest from the centroid; we keep the earliest, for determinism
  across reruns with other inputs appended.)
"""

from __future__ import annotations

import numpy as np

from worldsmith.curate.config import DedupConfig


def _popcount(x: np.ndarray) -> np.ndarray:
    return np.bitwise_count(x) if hasattr(np, "bitwise_count") else np.array([bin(int(v)).count("1") for v in x.ravel()]).reshape(x.shape)


def kmeans(x: np.ndarray, k: int, seed: int, iters: int = 30) -> np.ndarray:
    """Cosine k-means (spherical) with k-means++ seeding; returns a label per row."""
    rng = np.random.default_rng(seed)
    n = len(x)
    centres = [x[int(rng.integers(n))]]
    for _ in range(1, k):
        d = 1.0 - np.max(x @ np.stack(centres).T, axis=1)
        d = np.clip(d, 0, None)
        p = d / d.sum() if d.sum() > 0 else np.full(n, 1.0 / n)
        centres.append(x[int(rng.choice(n, p=p))])
    c = np.stack(centres)
    labels = np.zeros(n, dtype=int)
    for _ in range(iters):
        new = np.argmax(x @ c.T, axis=1)
        if _ > 0 and np.array_equal(new, labels):
            break
        labels = new
        for j in range(k):
            members = x[labels == j]
            if len(members):
                m = members.mean(0)
                c[j] = m / (np.linalg.norm(m) + 1e-8)
    return labels


def deduplicate(records: list[dict], cfg: DedupConfig) -> None:
    """Mark duplicates in place (status, stage, reason, dup_of) and set `cluster` on every candidate."""
    cand = [r for r in records if r["status"] == "accepted"]
    for r in records:
        r.setdefault("dup_of", "")
        r.setdefault("cluster", -1)
    if cfg.exact:
        seen: dict[str, str] = {}
        for r in cand:
            if r["exact_hash"] in seen:
                _reject(r, "dedup_exact", "duplicate_exact", seen[r["exact_hash"]])
            else:
                seen[r["exact_hash"]] = r["clip_id"]
        cand = [r for r in cand if r["status"] == "accepted"]
    if cfg.near and cand:
        k = min(len(r["dhash"]) for r in cand)
        hashes = np.array([[int(h, 16) for h in r["dhash"][:k]] for r in cand], dtype=np.uint64)
        kept: list[int] = []
        for i, r in enumerate(cand):
            if kept:
                dist = _popcount(hashes[kept] ^ hashes[i]).mean(axis=1)
                j = int(np.argmin(dist))
                if dist[j] <= cfg.near_hamming:
                    _reject(r, "dedup_near", "duplicate_near", cand[kept[j]]["clip_id"], f"mean Hamming {dist[j]:.1f}")
                    continue
            kept.append(i)
        cand = [r for r in cand if r["status"] == "accepted"]
    if cfg.semantic and len(cand) > 1:
        x = np.array([r["embedding"] for r in cand], dtype=np.float64)
        x /= np.linalg.norm(x, axis=1, keepdims=True) + 1e-8
        k = max(1, min(cfg.clusters, len(cand) // 4))
        labels = kmeans(x, k, cfg.seed)
        for j in range(k):
            kept = []
            for i in np.flatnonzero(labels == j):
                cand[i]["cluster"] = int(j)
                if kept:
                    sims = x[kept] @ x[i]
                    m = int(np.argmax(sims))
                    if sims[m] > cfg.semantic_threshold:
                        _reject(cand[i], "dedup_semantic", "duplicate_semantic", cand[kept[m]]["clip_id"],
                                f"cosine {sims[m]:.4f}")
                        continue
                kept.append(int(i))


def _reject(r: dict, stage: str, reason: str, dup_of: str, detail: str = "") -> None:
    r.update(status="rejected", stage=stage, reason=reason, dup_of=dup_of, detail=detail or f"duplicate of {dup_of}")
