//! The CUDA device against the CPU on whole optimiser steps (feature
//! `cuda`). Where no device opens (CI) each check says so and asserts only
//! that `cuda` is refused with a one-line error and `auto` falls back.
#![cfg(feature = "cuda")]

use natgrad::linalg::{Compute, Device, DeviceChoice};
use natgrad::optim::{AnagramConfig, OptimizerConfig};

fn on(device: Device) -> Compute {
    Compute { threads: 1, device }
}

/// Five ANaGRAM steps (full decomposition) on heat: the same losses on the
/// device as on the CPU to 1e-9 relative, with the same kept ranks.
#[test]
fn anagram_steps_on_heat_agree_with_the_cpu() {
    let cuda = on(Device::Cuda);
    match cuda.resolve() {
        Err(e) => {
            let msg = e.to_string();
            assert!(
                !msg.contains('\n') && msg.starts_with("CUDA device"),
                "{msg}"
            );
            let auto = on(Device::Auto).resolve().unwrap();
            assert!(
                matches!(auto, DeviceChoice::Cpu { fallback: Some(_) }),
                "{auto:?}"
            );
            eprintln!("no CUDA device, step comparison skipped: {msg}");
            return;
        }
        Ok(choice) => eprintln!("device: {choice}"),
    }
    let pb = natgrad::problems::heat();
    let ls = pb.least_squares().unwrap();
    let config = OptimizerConfig::Anagram(AnagramConfig {
        svd: natgrad::linalg::SvdMethod::Full,
        ..Default::default()
    });
    let run = |compute: &Compute| {
        let mut opt = config.build(compute).unwrap();
        let mut theta = pb.initial_theta(0).unwrap();
        let mut loss = ls.loss(&theta).unwrap();
        let mut out = Vec::new();
        for _ in 0..5 {
            let rep = opt.step(&ls, &mut theta, loss).unwrap();
            loss = rep.loss;
            let on_device = rep.phases.unwrap().device_decompositions;
            out.push((rep.loss, rep.rank.unwrap(), on_device));
        }
        out
    };
    let (cpu, gpu) = (run(&on(Device::Cpu)), run(&cuda));
    for (k, ((lc, rc, dc), (lg, rg, dg))) in cpu.iter().zip(&gpu).enumerate() {
        eprintln!("step {k}: cpu loss {lc:.15e} rank {rc}; cuda loss {lg:.15e} rank {rg}");
        assert_eq!((*dc, *dg), (0, 1), "where the decompositions ran");
        assert_eq!(rc, rg, "kept rank at step {k}");
        assert!((lc - lg).abs() <= 1e-9 * lc.abs(), "step {k}: {lc} vs {lg}");
    }
}
