//! The elementary cycles of the wait-for graph (Johnson's algorithm, on an
//! explicit stack), each kept only if its waits can all hold at once.
//!
//! A cycle `P0 -> P1 -> ... -> P0` is *feasible* when each `Pi` has a wait
//! with an alternative that `P(i+1)` could end, such that the channel states
//! those alternatives imply (plus what each wait implies whatever arm it is
//! blocked on) do not contradict each other: no channel is both full (a
//! blocked send) and empty (a blocked receive). A real deadlock is a set of
//! processes that are all blocked at once; from any of them that waits on
//! another of them, following such waits closes a cycle whose waits do hold
//! at once, so it is among the feasible ones: dropping the others is sound.

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use super::waits::{Chan, Mode, Topology};

/// How many elementary cycles the search looks at before it stops.
pub(super) const MAX_EXAMINED: usize = 100_000;
/// How many edge visits Johnson's search makes before it stops (each cycle
/// costs up to the size of the graph, so a dense graph with few feasible
/// cycles would otherwise take hours).
pub(super) const MAX_WORK: usize = 20_000_000;
/// How many feasible cycles it keeps.
pub(super) const MAX_KEPT: usize = 1000;
/// How many steps, over all the cycles kept, the search keeps.
pub(super) const MAX_KEPT_STEPS: usize = 20_000;
/// How many labellings one cycle's feasibility check tries.
const MAX_LABELLINGS: usize = 100_000;
/// How many labellings all the checks together try.
const MAX_LABELLINGS_IN_ALL: usize = 5_000_000;

/// One step of a feasible cycle: process `proc` blocked at `topo.waits[wait]`,
/// on its alternative `alt`, which the next process could end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Step {
    pub proc: usize,
    pub wait: usize,
    pub alt: usize,
}

/// What the search found.
pub(super) struct Found {
    /// Feasible cycles, shortest first.
    pub cycles: Vec<Vec<Step>>,
    /// Every elementary cycle was looked at and fully checked.
    pub complete: bool,
    /// How many elementary cycles were looked at.
    pub examined: usize,
    /// Edges of the graph, `None` past [`MAX_EDGES`] (then nothing was searched).
    pub edges: Option<usize>,
}

/// At most this many edges are built: a family of thousands all sending to
/// and receiving from one mailbox makes millions, and the answer would be
/// "cycles possible" long before they were all searched.
pub(super) const MAX_EDGES: usize = 1_000_000;

/// The modes a step implies: its alternative's, and its wait's own.
fn step_modes(topo: &Topology, wait: usize, alt: usize) -> Vec<Mode> {
    let w = &topo.waits[wait];
    w.alts[alt]
        .mode
        .into_iter()
        .chain(w.always.iter().copied())
        .collect()
}

/// Whether one step's own modes contradict each other. Not on a
/// rendezvous queue: a `select` with a send arm and a receive arm on the
/// same queue of capacity 0 is stuck when no one else is there (it is not
/// a receiver waiting while it tries its send, nor the other way round),
/// although two processes could not be stuck that way at once.
fn self_clash(topo: &Topology, modes: &[Mode]) -> bool {
    modes
        .iter()
        .any(|&m| !topo.rendezvous(m) && modes.iter().any(|&o| m.conflicts(o)))
}

fn clash(a: &[Mode], b: &[Mode]) -> bool {
    a.iter().any(|&m| b.iter().any(|&o| m.conflicts(o)))
}

/// The wait-for graph: `adj[p]` = the processes some wait of `p` could be
/// ended by, while that process is itself blocked in a way that fits:
/// an edge `P -> Q` whose every labelling clashes with every step of `Q`
/// (a producer's full queue and its consumer's empty one) is in no
/// feasible cycle, so it is left out. `None` past [`MAX_EDGES`].
pub(super) fn graph(topo: &Topology, n: usize) -> Option<Vec<Vec<usize>>> {
    let by_proc = topo.by_proc(n);
    // Each process's distinct step mode sets (those not clashing within).
    let steps: Vec<Vec<Vec<Mode>>> = by_proc
        .iter()
        .map(|waits| {
            let mut out: Vec<Vec<Mode>> = Vec::new();
            for &wi in waits {
                for ai in 0..topo.waits[wi].alts.len() {
                    let mut m = step_modes(topo, wi, ai);
                    m.sort();
                    m.dedup();
                    if !self_clash(topo, &m) && !out.contains(&m) {
                        out.push(m);
                    }
                }
            }
            out
        })
        .collect();
    let mut adj = Vec::with_capacity(n);
    let mut edges = 0usize;
    for (me, waits) in by_proc.iter().enumerate() {
        // Each (shared set of parties, modes) once, however many
        // statements have it.
        let mut seen: Vec<(&Rc<BTreeSet<usize>>, Vec<Mode>)> = Vec::new();
        let mut out = Vec::new();
        for &wi in waits {
            for (ai, a) in topo.waits[wi].alts.iter().enumerate() {
                let mut modes = step_modes(topo, wi, ai);
                modes.sort();
                modes.dedup();
                if self_clash(topo, &modes)
                    || seen
                        .iter()
                        .any(|(p, m)| Rc::ptr_eq(p, &a.parties) && *m == modes)
                {
                    continue;
                }
                edges = edges.saturating_add(a.parties.len());
                if edges > MAX_EDGES {
                    return None;
                }
                out.extend(
                    a.parties
                        .iter()
                        .copied()
                        .filter(|&q| q != me && steps[q].iter().any(|other| !clash(&modes, other))),
                );
                seen.push((&a.parties, modes));
            }
        }
        out.sort_unstable();
        out.dedup();
        adj.push(out);
    }
    Some(adj)
}

/// The nodes `>= s` that `s` reaches and that reach `s` through nodes `>= s`
/// (the strongly connected component of `s` in that subgraph).
fn component(adj: &[Vec<usize>], radj: &[Vec<usize>], s: usize) -> Vec<bool> {
    let n = adj.len();
    let reach = |edges: &[Vec<usize>]| {
        let mut seen = vec![false; n];
        let mut stack = vec![s];
        seen[s] = true;
        while let Some(v) = stack.pop() {
            for &w in &edges[v] {
                if w >= s && !seen[w] {
                    seen[w] = true;
                    stack.push(w);
                }
            }
        }
        seen
    };
    let fwd = reach(adj);
    let back = reach(radj);
    fwd.iter().zip(&back).map(|(a, b)| *a && *b).collect()
}

/// Every elementary cycle (as process lists starting at their smallest
/// process), handed to `emit` until it returns `false` or `limit` were seen;
/// returns whether the enumeration ran to its end.
fn elementary_cycles(
    adj: &[Vec<usize>],
    limit: usize,
    mut emit: impl FnMut(&[usize]) -> bool,
) -> bool {
    let n = adj.len();
    let mut radj = vec![Vec::new(); n];
    for (v, out) in adj.iter().enumerate() {
        for &w in out {
            radj[w].push(v);
        }
    }
    let mut seen = 0usize;
    let mut work = 0usize;
    let mut blocked = vec![false; n];
    let mut b: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); n];
    let edges: usize = adj.iter().map(Vec::len).sum();
    for s in 0..n {
        work = work.saturating_add(edges.saturating_add(n));
        if work > MAX_WORK {
            return false;
        }
        let comp = component(adj, &radj, s);
        let sub: Vec<Vec<usize>> = adj
            .iter()
            .enumerate()
            .map(|(v, out)| {
                if comp[v] {
                    out.iter().copied().filter(|&w| comp[w]).collect()
                } else {
                    Vec::new()
                }
            })
            .collect();
        if sub[s].is_empty() {
            continue;
        }
        for v in 0..n {
            blocked[v] = false;
            b[v].clear();
        }
        // Johnson's CIRCUIT, with frames (node, next edge, found a cycle).
        let mut path = vec![s];
        let mut frames: Vec<(usize, usize, bool)> = vec![(s, 0, false)];
        blocked[s] = true;
        while let Some(top) = frames.last_mut() {
            let v = top.0;
            if let Some(&w) = sub[v].get(top.1) {
                top.1 += 1;
                work += 1;
                if work > MAX_WORK {
                    return false;
                }
                if w == s {
                    top.2 = true;
                    seen += 1;
                    if !emit(&path) || seen >= limit {
                        return false;
                    }
                } else if !blocked[w] {
                    blocked[w] = true;
                    path.push(w);
                    frames.push((w, 0, false));
                }
                continue;
            }
            let (v, _, found) = frames.pop().unwrap_or((v, 0, false));
            if found {
                // UNBLOCK(v), on a stack.
                let mut stack = vec![v];
                while let Some(x) = stack.pop() {
                    work += 1;
                    blocked[x] = false;
                    for y in std::mem::take(&mut b[x]) {
                        if blocked[y] {
                            stack.push(y);
                        }
                    }
                }
            } else {
                for &w in &sub[v] {
                    b[w].insert(v);
                }
            }
            path.pop();
            if let Some(parent) = frames.last_mut() {
                parent.2 |= found;
            }
        }
    }
    true
}

/// A labelling of `cycle` whose waits can all hold at once, if there is
/// one; `Err(())` when the check was cut short (treat as feasible).
fn feasible(
    topo: &Topology,
    by_proc: &[Vec<usize>],
    cycle: &[usize],
    spent: &mut usize,
) -> Result<Option<Vec<Step>>, ()> {
    let k = cycle.len();
    // The choices of each step: (wait, alt) of cycle[i] that cycle[i+1] ends.
    let choices: Vec<Vec<Step>> = (0..k)
        .map(|i| {
            let (p, next) = (cycle[i], cycle[(i + 1) % k]);
            let mut out = Vec::new();
            for &wi in &by_proc[p] {
                for (ai, a) in topo.waits[wi].alts.iter().enumerate() {
                    if a.ended_by(p, next) {
                        out.push(Step {
                            proc: p,
                            wait: wi,
                            alt: ai,
                        });
                    }
                }
            }
            out
        })
        .collect();
    let modes_of = |s: Step| step_modes(topo, s.wait, s.alt);
    // How many chosen steps hold each channel full / empty: a step fits
    // when none of its modes has its opposite counted (nor inside itself).
    let mut held: BTreeMap<Chan, [u32; 2]> = BTreeMap::new();
    let side = |m: Mode| match m {
        Mode::Full(c) => (c, 0usize),
        Mode::Empty(c) => (c, 1usize),
    };
    let fits = |held: &BTreeMap<Chan, [u32; 2]>, modes: &[Mode]| {
        !self_clash(topo, modes)
            && modes.iter().all(|&m| {
                let (c, s) = side(m);
                held.get(&c).is_none_or(|n| n[1 - s] == 0)
            })
    };
    let count = |held: &mut BTreeMap<Chan, [u32; 2]>, modes: &[Mode], up: bool| {
        for &m in modes {
            let (c, s) = side(m);
            let n = held.entry(c).or_insert([0, 0]);
            n[s] = if up { n[s] + 1 } else { n[s].saturating_sub(1) };
        }
    };
    // Depth-first over the steps, with the index of the choice at each.
    let mut idx = vec![0usize; k];
    let mut chosen: Vec<Step> = Vec::with_capacity(k);
    let mut tries = 0usize;
    loop {
        let i = chosen.len();
        if i == k {
            return Ok(Some(chosen));
        }
        if let Some(&c) = choices[i].get(idx[i]) {
            idx[i] += 1;
            tries += 1;
            *spent += 1;
            if tries > MAX_LABELLINGS || *spent > MAX_LABELLINGS_IN_ALL {
                return Err(());
            }
            let modes = modes_of(c);
            if fits(&held, &modes) {
                count(&mut held, &modes, true);
                chosen.push(c);
                if let Some(n) = idx.get_mut(i + 1) {
                    *n = 0;
                }
            }
            continue;
        }
        if let Some(c) = chosen.last() {
            count(&mut held, &modes_of(*c), false);
        }
        if chosen.pop().is_none() {
            return Ok(None);
        }
    }
}

/// The feasible cycles of the topology's wait-for graph.
pub(super) fn find(topo: &Topology, n: usize) -> Found {
    let Some(adj) = graph(topo, n) else {
        return Found {
            cycles: Vec::new(),
            complete: false,
            examined: 0,
            edges: None,
        };
    };
    let edges = Some(adj.iter().map(Vec::len).sum());
    let by_proc = topo.by_proc(n);
    let mut cycles = Vec::new();
    let mut complete = true;
    let mut examined = 0usize;
    let mut kept_steps = 0usize;
    let mut spent = 0usize;
    let ended = elementary_cycles(&adj, MAX_EXAMINED, |cycle| {
        examined += 1;
        let before = cycles.len();
        match feasible(topo, &by_proc, cycle, &mut spent) {
            Ok(Some(steps)) => cycles.push(steps),
            Ok(None) => {}
            Err(()) => {
                // Could not decide: keep it with its first labelling.
                complete = false;
                let k = cycle.len();
                let first: Option<Vec<Step>> = (0..k)
                    .map(|i| {
                        let (p, next) = (cycle[i], cycle[(i + 1) % k]);
                        by_proc[p].iter().find_map(|&wi| {
                            let w = &topo.waits[wi];
                            let ai = w.alts.iter().position(|a| a.ended_by(p, next))?;
                            Some(Step {
                                proc: p,
                                wait: wi,
                                alt: ai,
                            })
                        })
                    })
                    .collect();
                cycles.extend(first);
            }
        }
        if cycles.len() > before {
            kept_steps = kept_steps.saturating_add(cycles.last().map_or(0, Vec::len));
        }
        cycles.len() < MAX_KEPT && kept_steps < MAX_KEPT_STEPS && spent <= MAX_LABELLINGS_IN_ALL
    });
    if !ended {
        complete = false;
    }
    cycles.sort_by(|a, b| {
        a.len().cmp(&b.len()).then_with(|| {
            a.iter()
                .map(|s| s.proc)
                .collect::<Vec<_>>()
                .cmp(&b.iter().map(|s| s.proc).collect::<Vec<_>>())
        })
    });
    Found {
        cycles,
        complete,
        examined,
        edges,
    }
}

#[cfg(test)]
mod tests {
    use super::elementary_cycles;

    fn all(adj: &[Vec<usize>]) -> Vec<Vec<usize>> {
        let mut out = Vec::new();
        assert!(elementary_cycles(adj, usize::MAX, |c| {
            out.push(c.to_vec());
            true
        }));
        out.sort();
        out
    }

    #[test]
    fn smoke() {
        // 0 <-> 1, 1 -> 2 -> 0.
        let adj = vec![vec![1], vec![0, 2], vec![0]];
        assert_eq!(all(&adj), vec![vec![0, 1], vec![0, 1, 2]]);
    }

    #[test]
    fn complete_graph_has_every_cycle() {
        // K4 without self-loops: C(4,2)*1 + C(4,3)*2 + C(4,4)*6 = 6 + 8 + 6 = 20.
        let adj: Vec<Vec<usize>> = (0..4)
            .map(|v| (0..4).filter(|&w| w != v).collect())
            .collect();
        assert_eq!(all(&adj).len(), 20);
    }

    #[test]
    fn acyclic_has_none() {
        let adj = vec![vec![1, 2], vec![2], vec![]];
        assert!(all(&adj).is_empty());
    }

    #[test]
    fn the_work_budget_stops_a_dense_search() {
        // K_150 has more elementary cycles than atoms; the search must give
        // up after MAX_WORK edge visits, not run for ages.
        let adj: Vec<Vec<usize>> = (0..150)
            .map(|v| (0..150).filter(|&w| w != v).collect())
            .collect();
        let mut n = 0usize;
        assert!(!elementary_cycles(&adj, usize::MAX, |_| {
            n += 1;
            true
        }));
        assert!(n > 0);
    }

    #[test]
    fn the_limit_stops_the_search() {
        let adj: Vec<Vec<usize>> = (0..5)
            .map(|v| (0..5).filter(|&w| w != v).collect())
            .collect();
        let mut n = 0;
        assert!(!elementary_cycles(&adj, 7, |_| {
            n += 1;
            true
        }));
        assert_eq!(n, 7);
    }
}
