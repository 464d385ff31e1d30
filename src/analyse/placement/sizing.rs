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
    /// The nodes' bill, with what several nodes add (a load balancer).
    pub monthly: f64,
    pub explain: String,
}

/// A node's free memory and its index, ordered so that a max-heap yields
/// the emptiest node, the last of equals first.
#[derive(Clone, Copy, PartialEq)]
struct ByFreeMemory(f64, usize);

impl Eq for ByFreeMemory {}

impl PartialOrd for ByFreeMemory {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ByFreeMemory {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0).then(self.1.cmp(&other.1))
    }
}

/// Whether `units` fit on `nodes` nodes of `size`: each replica goes to the
/// emptiest node (by memory) with room for it, and replicas of one service
/// go to different nodes while there are enough. A heap keeps the emptiest
/// node at hand, so thousands of session containers pack in O(n log n).
pub fn fits(size: &Price, nodes: u32, units: &[Unit]) -> bool {
    use std::collections::BinaryHeap;
    let cap_cpu = size.vcpu.unwrap_or(0.0);
    let cap_mem = size.memory_gb.unwrap_or(0.0);
    let cap_mem = cap_mem - reserved_gb(cap_mem);
    let mut cpu: Vec<f64> = vec![cap_cpu; nodes as usize];
    let mut heap: BinaryHeap<ByFreeMemory> = (0..nodes as usize)
        .map(|i| ByFreeMemory(cap_mem, i))
        .collect();
    let mut order: Vec<&Unit> = units.iter().collect();
    order.sort_by(|a, b| {
        (b.memory_gb * b.replicas as f64).total_cmp(&(a.memory_gb * a.replicas as f64))
    });
    for u in order {
        let spread = u.replicas <= nodes;
        // Nodes this service already holds (when spreading) or that lack
        // the CPU for it: back in the heap once the service is placed.
        let mut aside: Vec<ByFreeMemory> = Vec::new();
        for _ in 0..u.replicas {
            let placed = loop {
                let Some(top) = heap.pop() else {
                    break None;
                };
                if top.0 + 1e-9 < u.memory_gb {
                    // The emptiest node is too full: every node is.
                    heap.push(top);
                    break None;
                }
                if cpu[top.1] + 1e-9 >= u.cpu {
                    break Some(top);
                }
                aside.push(top);
            };
            let Some(ByFreeMemory(free, i)) = placed else {
                return false;
            };
            cpu[i] -= u.cpu;
            let after = ByFreeMemory(free - u.memory_gb, i);
            if spread {
                aside.push(after);
            } else {
                heap.push(after);
            }
        }
        heap.extend(aside);
    }
    true
}

pub fn choose<'a>(
    sizes: &[&'a Price],
    units: &[Unit],
    min_nodes: u32,
    max_nodes: u32,
    beyond_one_node: f64,
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
        // nodes that fit is found by bisection. It starts at the count the
        // summed CPU and memory need and doubles from there: packing is
        // tried near that count, never at the 1,000-node ceiling, so a
        // plan of thousands of session containers stays quick.
        let (lo, hi) = (min_nodes.max(1), max_nodes.max(min_nodes).max(1));
        let cap_cpu = size.vcpu.unwrap_or(0.0);
        let cap_mem = size.memory_gb.unwrap_or(0.0);
        let cap_mem = cap_mem - reserved_gb(cap_mem);
        if cap_cpu <= 0.0
            || cap_mem <= 0.0
            || units
                .iter()
                .any(|u| u.cpu > cap_cpu + 1e-9 || u.memory_gb > cap_mem + 1e-9)
        {
            continue;
        }
        let bound = ((need_cpu / cap_cpu - 1e-9).ceil() as u32)
            .max((need_mem / cap_mem - 1e-9).ceil() as u32)
            .max(lo);
        if bound > hi {
            // Even perfectly packed, the units need more nodes than allowed.
            continue;
        }
        let (mut a, mut b) = (bound, bound);
        let found = loop {
            if fits(size, b, units) {
                break true;
            }
            if b >= hi {
                break false;
            }
            a = b + 1;
            b = b.saturating_mul(2).min(hi);
        };
        if !found {
            continue;
        }
        while a < b {
            let mid = a + (b - a) / 2;
            if fits(size, mid, units) {
                b = mid
            } else {
                a = mid + 1
            }
        }
        let n = a;
        // Several nodes bring what one does not need (a load balancer in
        // front of them), so the comparison is of the whole bill.
        let cost = per_node * n as f64 + if n > 1 { beyond_one_node } else { 0.0 };
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
        "{} × {} (${:.2}/month{}): {replicas} replicas need {need_cpu:.2} vCPU and {need_mem:.2} GB; each node keeps {:.2} GB for the OS{}{}",
        b.nodes,
        b.size.item,
        b.monthly,
        if b.nodes > 1 && beyond_one_node > 0.0 {
            " with their load balancer"
        } else {
            ""
        },
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The packing as first written: scan every node for each replica.
    fn fits_by_scan(size: &Price, nodes: u32, units: &[Unit]) -> bool {
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
            let mut used = vec![false; nodes as usize];
            for _ in 0..u.replicas {
                let pick = (0..nodes as usize)
                    .filter(|&i| free[i].0 + 1e-9 >= u.cpu && free[i].1 + 1e-9 >= u.memory_gb)
                    .filter(|&i| !spread || !used[i])
                    .max_by(|&a, &b| free[a].1.total_cmp(&free[b].1));
                let Some(i) = pick else {
                    return false;
                };
                free[i].0 -= u.cpu;
                free[i].1 -= u.memory_gb;
                used[i] = true;
            }
        }
        true
    }

    fn size(vcpu: f64, memory_gb: f64) -> Price {
        serde_json::from_value(serde_json::json!({
            "id": "t.size", "provider": "t", "item": "size", "unit": "month",
            "usd": 10.0, "vcpu": vcpu, "memory_gb": memory_gb,
            "source": "test", "captured": "2026-01-01", "backing": "P"
        }))
        .unwrap()
    }

    fn unit(i: usize, cpu: f64, memory_gb: f64, replicas: u32) -> Unit {
        Unit {
            name: format!("u{i}"),
            cpu,
            memory_gb,
            replicas,
            disk_gb: 0.0,
            dependency: None,
            public: false,
            duty: 1.0,
        }
    }

    #[test]
    fn several_nodes_pay_for_their_load_balancer() {
        // 2 GB replicas: three $10 nodes of 2 vCPU/4 GB, or one $35 node of
        // 8 vCPU/16 GB. Compute alone favours the three ($30); with an $18 load
        // balancer in front of them, the one node is cheaper.
        let small = size(2.0, 4.0);
        let mut big = size(8.0, 16.0);
        big.id = "t.big".into();
        big.item = "big".into();
        big.usd = Some(35.0);
        let units = vec![unit(0, 1.0, 2.0, 3)];
        let alone = choose(&[&small, &big], &units, 1, 50, 0.0).unwrap();
        assert_eq!((alone.size.item.as_str(), alone.nodes), ("size", 3));
        let behind_lb = choose(&[&small, &big], &units, 1, 50, 18.0).unwrap();
        assert_eq!((behind_lb.size.item.as_str(), behind_lb.nodes), ("big", 1));
        assert!(
            behind_lb
                .explain
                .contains("next cheapest fit: 3 × size ($48.00)"),
            "{}",
            behind_lb.explain
        );
    }

    proptest! {
        /// The heap packs exactly as the scan did, on sizes and loads that
        /// sit near the limits (quarter cores, quarter gigabytes).
        #[test]
        fn the_heap_packs_as_the_scan_did(
            cores in 1u32..9,
            quarter_gb in 4u32..65,
            nodes in 1u32..12,
            loads in proptest::collection::vec((1u32..9, 1u32..17, 1u32..9), 1..8),
        ) {
            let s = size(cores as f64, quarter_gb as f64 / 4.0);
            let units: Vec<Unit> = loads
                .iter()
                .enumerate()
                .map(|(i, (c, m, r))| unit(i, *c as f64 / 4.0, *m as f64 / 4.0, *r))
                .collect();
            prop_assert_eq!(fits(&s, nodes, &units), fits_by_scan(&s, nodes, &units));
        }
    }
}
