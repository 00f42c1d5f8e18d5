//! The checkpoint folder: the trained weights (`model.bpk`), their average (`ema.bpk`), the
//! optimizer (`optim.bpk`), and the progress and settings (`state.json`).

use std::path::Path;

use burn::module::Module;
use burn::optim::OptimizerRecord;
use burn::tensor::Device;
use burn_probability_examples::vae::ema::Ema;
use burn_probability_examples::vae::model::Vae;

use crate::{Settings, State, build, fail};

#[derive(serde::Serialize, serde::Deserialize)]
struct CheckpointState {
    epoch: usize,
    settings: Settings,
    /// Updates folded into the weight average (`ema.bpk`).
    #[serde(default)]
    ema_updates: u64,
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Saves the trained weights `vae`, their average `ema`, the optimizer's state `optim` and the
/// progress after `epoch` epochs. Every file is written under a temporary name and then renamed;
/// `state.json`, written last, commits the checkpoint. The single-device loop and the
/// data-parallel run (`multi_device.rs`) both save through here, so that either resumes the
/// other's checkpoint.
pub(crate) fn save_checkpoint(
    dir: &Path,
    vae: &Vae,
    ema: Option<&Ema<Vae>>,
    optim: OptimizerRecord,
    epoch: usize,
    s: &Settings,
) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let tmp = |name: &str| dir.join(format!("{name}.tmp"));
    let save = |m: &Vae, name: &str| {
        m.clone()
            .save_file(tmp(name))
            .map_err(|e| format!("cannot write {}: {e:?}", tmp(name).display()))
    };
    let mut names = vec!["model.bpk", "optim.bpk"];
    save(vae, "model.bpk")?;
    if let Some(ema) = ema {
        save(&ema.model, "ema.bpk")?;
        names.push("ema.bpk");
    }
    optim
        .save(tmp("optim.bpk"))
        .map_err(|e| format!("cannot write {}: {e:?}", tmp("optim.bpk").display()))?;
    for name in names {
        std::fs::rename(tmp(name), dir.join(name))
            .map_err(|e| format!("cannot rename {}: {e}", tmp(name).display()))?;
    }
    let progress = CheckpointState {
        epoch,
        settings: s.clone(),
        ema_updates: ema.map_or(0, |e| e.updates),
    };
    write_atomic(
        &dir.join("state.json"),
        serde_json::to_string_pretty(&progress)
            .expect("serializable")
            .as_bytes(),
    )
}

/// Reads `state.json` of the checkpoint in `dir`.
fn read_state(dir: &Path) -> CheckpointState {
    let path = dir.join("state.json");
    std::fs::read_to_string(&path)
        .map_err(|e| format!("--resume: cannot read {}: {e}", path.display()))
        .and_then(|t| {
            serde_json::from_str(&t)
                .map_err(|e| format!("--resume: {} is corrupt: {e}", path.display()))
        })
        .unwrap_or_else(|e| fail(e))
}

/// Continues from the checkpoint in `dir`, which must have been made with the settings `s`:
/// loads its model and optimizer into the new `state`, and its weight average when `s` keeps
/// one. Returns the state and the number of epochs done.
pub(crate) fn resume(state: State, s: &Settings, dir: &Path, device: &Device) -> (State, usize) {
    let saved = read_state(dir);
    if saved.settings != *s {
        fail(format!(
            "--resume: the checkpoint was made with other settings:\n  checkpoint: {:?}\n  now:        {s:?}",
            saved.settings
        ));
    }
    let vae = state
        .vae
        .try_load_file(dir.join("model.bpk"))
        .unwrap_or_else(|e| {
            fail(format!(
                "--resume: cannot load {}: {e:?}",
                dir.join("model.bpk").display()
            ))
        });
    let record = OptimizerRecord::load(dir.join("optim.bpk")).unwrap_or_else(|e| {
        fail(format!(
            "--resume: cannot load {}: {e:?}",
            dir.join("optim.bpk").display()
        ))
    });
    let optim = state.optim.load_record(record);
    let ema = (s.ema_decay > 0.0).then(|| {
        let path = dir.join("ema.bpk");
        let model = build(s, device)
            .try_load_file(&path)
            .unwrap_or_else(|e| fail(format!("--resume: cannot load {}: {e:?}", path.display())));
        Ema {
            model,
            decay: s.ema_decay,
            updates: saved.ema_updates,
        }
    });
    println!(
        "resuming after epoch {} from {}",
        saved.epoch,
        dir.display()
    );
    (State { vae, ema, optim }, saved.epoch)
}
