//! The sizing optimizer: which instance size and how many, for a set of
//! replicas, over the catalog's sizes. It packs replicas onto nodes
//! (first-fit decreasing, replicas of one service on different nodes when
//! there are enough) and keeps the cheapest feasible choice.

use super::workload::Unit;
use crate::catalog::Price;

/// Memory kept back per node for the OS, Docker and the proxy.
pub fn reserved_gb(node_memory_gb: f64) -> f64 {
    if node_memory_gb >= 2.0 { 0.5 } else { 0.25 }
}

pub struct Choice<'a> {
    pub size: &'a Price,
    pub nodes: u32,
    pub monthly: f64,
    pub explain: String,
}

/// Whether `units` fit on `nodes` nodes of `size`.
pub fn fits(size: &Price, nodes: u32, units: &[Unit]) -> bool {
    let cap_cpu = size.vcpu.unwrap_or(0.0);
    let cap_mem = size.memory_gb.unwrap_or(0.0);
    let cap_mem = cap_mem - reserved_gb(cap_mem);
    let mut free: Vec<(f64, f64)> = vec![(cap_cpu, cap_mem); nodes as usize];
    let mut order: Vec<&Unit> = units.iter().collect();
    order.sort_by(|a, b| {
        (b.memory_gb * b.replicas as f64).total_cmp(&(a.memory_gb * a.replicas as f64))
    });
    for u in order {
        let spread = u.replicas <= nodes;
        let mut used: Vec<bool> = vec![false; nodes as usize];
        for _ in 0..u.replicas {
            // Prefer the emptiest node that does not hold this service yet.
            let pick = (0..nodes as usize)
                .filter(|&i| free[i].0 + 1e-9 >= u.cpu && free[i].1 + 1e-9 >= u.memory_gb)
                .filter(|&i| !spread || !used[i])
                .max_by(|&a, &b| free[a].1.total_cmp(&free[b].1));
            match pick {
                Some(i) => {
                    free[i].0 -= u.cpu;
                    free[i].1 -= u.memory_gb;
                    used[i] = true;
                }
                None => return false,
            }
        }
    }
    true
}

pub fn choose<'a>(
    sizes: &[&'a Price],
    units: &[Unit],
    min_nodes: u32,
    max_nodes: u32,
) -> Option<Choice<'a>> {
    let need_cpu: f64 = units.iter().map(|u| u.cpu * u.replicas as f64).sum();
    let need_mem: f64 = units.iter().map(|u| u.memory_gb * u.replicas as f64).sum();
    let mut best: Option<Choice> = None;
    let mut runner_up: Option<(String, u32, f64)> = None;
    for size in sizes {
        let Some(per_node) = size.monthly() else {
            continue;
        };
        // Adding nodes never makes a placement impossible, so the fewest
        // nodes that fit is found by bisection.
        let (lo, hi) = (min_nodes.max(1), max_nodes.max(min_nodes).max(1));
        if !fits(size, hi, units) {
            continue;
        }
        let (mut a, mut b) = (lo, hi);
        while a < b {
            let mid = a + (b - a) / 2;
            if fits(size, mid, units) {
                b = mid
            } else {
                a = mid + 1
            }
        }
        let n = a;
        let cost = per_node * n as f64;
        let better = best.as_ref().is_none_or(|b| {
            cost < b.monthly - 1e-9 || ((cost - b.monthly).abs() < 1e-9 && n < b.nodes)
        });
        if better {
            if let Some(b) = &best {
                runner_up = Some((b.size.item.clone(), b.nodes, b.monthly));
            }
            best = Some(Choice {
                size,
                nodes: n,
                monthly: cost,
                explain: String::new(),
            });
        } else if runner_up.as_ref().is_none_or(|r| cost < r.2) {
            runner_up = Some((size.item.clone(), n, cost));
        }
    }
    let mut b = best?;
    let replicas: u32 = units.iter().map(|u| u.replicas).sum();
    b.explain = format!(
        "{} × {} (${:.2}/month): {replicas} replicas need {need_cpu:.2} vCPU and {need_mem:.2} GB; each node keeps {:.2} GB for the OS{}{}",
        b.nodes,
        b.size.item,
        b.monthly,
        reserved_gb(b.size.memory_gb.unwrap_or(0.0)),
        if min_nodes > 1 {
            format!("; at least {min_nodes} nodes so replicas survive a node failure")
        } else {
            String::new()
        },
        runner_up.map_or(String::new(), |(item, n, c)| format!(
            "; next cheapest fit: {n} × {item} (${c:.2})"
        )),
    );
    Some(b)
}
