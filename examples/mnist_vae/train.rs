//! One epoch of training (shuffled batches, optimizer steps, the weight average), then its
//! evaluation, its line of `metrics.jsonl`, the training curve and the checkpoint.

use std::time::Instant;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn_probability_examples::mnist::Split;
use burn_probability_examples::vae::ema::Ema;
use burn_probability_examples::vae::model::{ModelKind, Vae};
use burn_probability_examples::vae::schedule;
use indicatif::{ProgressBar, ProgressStyle};

use crate::checkpoint::save_checkpoint;
use crate::report::{append_line, evaluate, training_curve};
use crate::{Run, State, fail};

/// Trains `state` for epoch `epoch` (counted from 0). Returns it with the sum over the batches
/// of the loss times the batch size, and the epoch's seconds.
pub(crate) fn train_epoch(run: &Run, state: State, epoch: usize) -> (State, f64, f64) {
    let s = run.s;
    let batches = run.batches;
    // Reseeding per epoch makes a resumed run draw the same noise as an uninterrupted one.
    let seed = s.seed.wrapping_mul(1000).wrapping_add(epoch as u64);
    run.device.seed(seed);
    run.ad.seed(seed);
    let order = permutation(s.train_n, s.seed.wrapping_add(epoch as u64));
    let bar = epoch_bar(batches, epoch, run.args.epochs);
    let t0 = Instant::now();
    let bin = s.binarization();
    let State {
        mut vae,
        mut ema,
        mut optim,
    } = state;
    let mut loss_sum = 0.0;
    for (i, idx) in order.chunks(s.batch_size).enumerate() {
        let x = run.data.gather_images(Split::Train, idx, bin, &run.ad);
        vae.set_temperature(s.temperature_at(epoch * batches + i));
        let (next, loss) = run.threads.run(|| {
            let bound = vae.bound_with(x, s.objective, s.k, s.likelihood);
            let loss = bound.loss.clone().into_scalar::<f64>();
            if !loss.is_finite() {
                return (vae, loss);
            }
            let grads = GradientsParams::from_grads(bound.loss.backward(), &vae);
            let lr = schedule::warmed_up(s.lr, s.warmup_steps, epoch * batches + i);
            (optim.step(lr, vae, grads), loss)
        });
        vae = next;
        if !loss.is_finite() {
            fail(format!(
                "the loss became {loss} at epoch {}, batch {i}: try a lower --lr",
                epoch + 1
            ));
        }
        loss_sum += loss * idx.len() as f64;
        if s.ema_decay > 0.0 {
            ema.get_or_insert_with(|| Ema::new(vae.valid(), s.ema_decay))
                .update(&vae);
        }
        if i % 10 == 0 {
            let done = (i + 1) * s.batch_size;
            bar.set_message(format!(
                "loss {loss:.2}, {:.0} images/s",
                done as f64 / t0.elapsed().as_secs_f64()
            ));
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let seconds = t0.elapsed().as_secs_f64();
    (State { vae, ema, optim }, loss_sum, seconds)
}

/// The progress bar of epoch `epoch` (counted from 0) of `epochs`, over `batches` batches.
fn epoch_bar(batches: usize, epoch: usize, epochs: usize) -> ProgressBar {
    let bar = ProgressBar::new(batches as u64).with_style(
        ProgressStyle::with_template(
            "epoch {prefix} [{bar:30}] {pos}/{len} {msg} [{elapsed}<{eta}]",
        )
        .expect("template"),
    );
    bar.set_prefix(format!("{}/{}", epoch + 1, epochs));
    bar
}

/// Reports the epoch (see [`report_epoch`]) and saves the checkpoint. Returns the test ELBO of
/// the final model (the weight average when there is one).
pub(crate) fn end_epoch(
    run: &Run,
    state: &State,
    epoch: usize,
    loss_sum: f64,
    seconds: f64,
) -> f64 {
    let train_loss = loss_sum / run.s.train_n as f64;
    let elbo = report_epoch(
        run,
        &state.vae,
        state.ema.as_ref(),
        epoch,
        train_loss,
        seconds,
    );
    save_checkpoint(
        &run.ckpt,
        &state.vae,
        state.ema.as_ref(),
        state.optim.to_record(),
        epoch + 1,
        run.s,
    )
    .unwrap_or_else(|e| fail(e));
    elbo
}

/// Evaluates the trained weights `vae` and their average `ema` on the test images, prints the
/// line of epoch `epoch` (counted from 0; `train_loss` is its mean training loss per image),
/// appends it to `metrics.jsonl` and redraws `training_curve.png` from it. Returns the test
/// ELBO of the final model (the weight average when there is one).
pub(crate) fn report_epoch(
    run: &Run,
    vae: &Vae,
    ema: Option<&Ema<Vae>>,
    epoch: usize,
    train_loss: f64,
    seconds: f64,
) -> f64 {
    let (s, data, device, test_n) = (run.s, run.data, &run.device, run.test_n);
    let test_elbo = evaluate(vae, data, Split::Test, test_n, s, device);
    let test_elbo_ema = ema.map(|e| evaluate(&e.model, data, Split::Test, test_n, s, device));
    let ips = s.train_n as f64 / seconds;
    println!(
        "epoch {:>3}/{}: train loss {train_loss:.3}  test ELBO {test_elbo:.3} nats{}  ({seconds:.1} s, {ips:.0} images/s)",
        epoch + 1,
        run.args.epochs,
        test_elbo_ema.map_or(String::new(), |v| format!(", averaged weights {v:.3}"))
    );
    let mut line = serde_json::json!({
        "epoch": epoch + 1,
        "train_loss": train_loss,
        "test_elbo": test_elbo,
        "test_n": test_n,
        "seconds": seconds,
        "images_per_sec": ips,
        "likelihood": s.likelihood.name(),
    });
    if s.model == ModelKind::Categorical {
        line["temperature"] = serde_json::json!(s.temperature_at((epoch + 1) * run.batches - 1));
    }
    if let Some(v) = test_elbo_ema {
        line["test_elbo_ema"] = serde_json::json!(v);
    }
    append_line(&run.metrics, &line).unwrap_or_else(|e| fail(e));
    training_curve(&run.metrics).unwrap_or_else(|e| fail(e));
    test_elbo_ema.unwrap_or(test_elbo)
}

/// A deterministic permutation of `0..n` for an epoch (splitmix64 + Fisher–Yates).
pub(crate) fn permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    let mut next = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut p: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        p.swap(i, j);
    }
    p
}
