//! KernelSHAP (Lundberg and Lee 2017, "A unified approach to interpreting model predictions",
//! section 4.1), as shap's `KernelExplainer` computes it: the value of a coalition S of features
//! is the model's output averaged over the background rows with the features outside S taken
//! from the background row; the contributions are the weighted least-squares fit of those
//! values under the Shapley kernel, constrained to add up to f(x) − E[f]. Coalitions are
//! chosen as shap chooses them: whole subset sizes (smallest and largest first) while the
//! budget covers them, then seeded random samples of the rest, each with its complement. When
//! the budget covers every coalition the answer is the exact Shapley value of that game.
//! Features whose value equals every background row's contribute 0 and are left out.

use super::super::native::FeatureValue;
use super::Contributions;
use super::background::Background;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::collections::HashMap;

/// The seed of the coalitions drawn: the same row always gets the same answer.
const SEED: u64 = 0x5eed;
/// Rows scored per call of the model.
const CHUNK: usize = 4096;

/// A model's scores for rows: per row, every output (class probabilities, or the value).
pub type Scorer<'a> = dyn Fn(&[&[FeatureValue]]) -> Result<Vec<Vec<f64>>, String> + 'a;

/// KernelSHAP over a background set.
#[derive(Debug)]
pub struct KernelExplainer {
    /// The background rows and weights.
    pub background: Background,
    /// Coalitions evaluated a row (`explain_samples`).
    pub samples: usize,
    /// The first explained output (1 for a binary classifier's second class).
    pub first: usize,
    /// How many outputs are explained.
    pub outputs: usize,
}

impl KernelExplainer {
    /// The expected outputs over the background: the base values.
    pub fn base_values(&self, score: &Scorer<'_>) -> Result<Vec<f64>, String> {
        let rows: Vec<&[FeatureValue]> = self.background.rows.iter().map(Vec::as_slice).collect();
        let scores = score(&rows)?;
        Ok(self.weighted_mean(&scores))
    }

    fn weighted_mean(&self, scores: &[Vec<f64>]) -> Vec<f64> {
        let mut mean = vec![0.0; self.outputs];
        for (row, weight) in scores.iter().zip(&self.background.weights) {
            for (k, slot) in mean.iter_mut().enumerate() {
                *slot += weight * row.get(self.first + k).copied().unwrap_or(f64::NAN);
            }
        }
        mean
    }

    /// One row's contributions per output, given the base values, and whether they are exact
    /// (every coalition evaluated).
    pub fn explain(
        &self,
        row: &[FeatureValue],
        bases: &[f64],
        score: &Scorer<'_>,
    ) -> Result<(Vec<Contributions>, bool), String> {
        let features = row.len();
        let scores = score(&[row])?;
        let answer = scores.first().ok_or("the model answered no row")?;
        let fx: Vec<f64> = (0..self.outputs)
            .map(|k| answer.get(self.first + k).copied().unwrap_or(f64::NAN))
            .collect();
        // Features that equal every background row's value change nothing: they get 0.
        let varying: Vec<usize> = (0..features)
            .filter(|&j| self.background.rows.iter().any(|b| b[j] != row[j]))
            .collect();
        let mut out: Vec<Contributions> = bases
            .iter()
            .map(|&base_value| Contributions {
                base_value,
                features: vec![0.0; features],
            })
            .collect();
        match varying.len() {
            0 => return Ok((out, true)),
            1 => {
                for (k, output) in out.iter_mut().enumerate() {
                    output.features[varying[0]] = fx[k] - bases[k];
                }
                return Ok((out, true));
            }
            _ => {}
        }
        let exact = every_coalition_fits(varying.len(), self.samples);
        let coalitions = coalitions(varying.len(), self.samples);
        let values = self.coalition_values(row, &varying, &coalitions, score)?;
        for (k, output) in out.iter_mut().enumerate() {
            let targets: Vec<f64> = values.iter().map(|v| v[k] - bases[k]).collect();
            let phi = solve(&coalitions, &targets, fx[k] - bases[k], varying.len());
            for (&feature, value) in varying.iter().zip(phi) {
                output.features[feature] = value;
            }
        }
        Ok((out, exact))
    }

    /// Coalitions a row of these features costs (at most `explain_samples`, at most every
    /// one there is).
    pub fn coalitions_per_row(&self) -> usize {
        let features = self.background.rows.first().map_or(0, Vec::len);
        if every_coalition_fits(features, self.samples) {
            (1usize << features).saturating_sub(2).max(1)
        } else {
            self.samples
        }
    }

    /// Each coalition's value: the mean output over the background with the coalition's
    /// features from `row` and the others from the background row.
    fn coalition_values(
        &self,
        row: &[FeatureValue],
        varying: &[usize],
        coalitions: &[(Vec<bool>, f64)],
        score: &Scorer<'_>,
    ) -> Result<Vec<Vec<f64>>, String> {
        let per = self.background.rows.len();
        let mut values = Vec::with_capacity(coalitions.len());
        let mut pending: Vec<Vec<FeatureValue>> = Vec::with_capacity(CHUNK);
        let flush = |pending: &mut Vec<Vec<FeatureValue>>,
                     values: &mut Vec<Vec<f64>>|
         -> Result<(), String> {
            let views: Vec<&[FeatureValue]> = pending.iter().map(Vec::as_slice).collect();
            let scores = score(&views)?;
            for block in scores.chunks(per) {
                values.push(self.weighted_mean(block));
            }
            pending.clear();
            Ok(())
        };
        for (mask, _) in coalitions {
            for background in &self.background.rows {
                let mut mixed = background.clone();
                for (&feature, &on) in varying.iter().zip(mask) {
                    if on {
                        mixed[feature] = row[feature].clone();
                    }
                }
                pending.push(mixed);
            }
            if pending.len() + per > CHUNK {
                flush(&mut pending, &mut values)?;
            }
        }
        if !pending.is_empty() {
            flush(&mut pending, &mut values)?;
        }
        Ok(values)
    }
}

/// Whether a budget of `samples` covers all 2^m − 2 coalitions of `m` features.
fn every_coalition_fits(m: usize, samples: usize) -> bool {
    m < 40 && (1usize << m).saturating_sub(2) <= samples
}

fn binomial(n: usize, k: usize) -> f64 {
    (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
}

/// The coalitions (masks over the `m` varying features) and their kernel weights, as shap's
/// `KernelExplainer` picks them for a budget of `samples`.
fn coalitions(m: usize, samples: usize) -> Vec<(Vec<bool>, f64)> {
    let samples = samples.min((1usize << m.min(62)).saturating_sub(2).max(1));
    let sizes = (m - 1).div_ceil(2);
    let paired = (m - 1) / 2;
    let mut weight_of_size: Vec<f64> = (1..=sizes)
        .map(|s| (m - 1) as f64 / (s * (m - s)) as f64)
        .collect();
    for w in weight_of_size.iter_mut().take(paired) {
        *w *= 2.0;
    }
    let total: f64 = weight_of_size.iter().sum();
    weight_of_size.iter_mut().for_each(|w| *w /= total);
    let mut out: Vec<(Vec<bool>, f64)> = Vec::new();
    let mut left = samples;
    let mut remaining = weight_of_size.clone();
    let mut full_sizes = 0;
    for s in 1..=sizes {
        let is_paired = s <= paired;
        let count = binomial(m, s) * if is_paired { 2.0 } else { 1.0 };
        if left as f64 * remaining[s - 1] / count < 1.0 - 1e-8 {
            break;
        }
        full_sizes += 1;
        left -= count as usize;
        if remaining[s - 1] < 1.0 {
            let scale = 1.0 - remaining[s - 1];
            remaining.iter_mut().for_each(|w| *w /= scale);
        }
        let weight = weight_of_size[s - 1] / binomial(m, s) / if is_paired { 2.0 } else { 1.0 };
        for mask in subsets_of_size(m, s) {
            if is_paired {
                out.push((mask.iter().map(|b| !b).collect(), weight));
            }
            out.push((mask, weight));
        }
    }
    if full_sizes < sizes && left > 0 {
        add_random(
            &mut out,
            m,
            left,
            full_sizes,
            sizes,
            paired,
            &weight_of_size,
        );
    }
    out
}

/// shap's random part: sizes drawn from the kernel's remaining weight, subsets drawn
/// uniformly, each with its complement; a repeat adds to its weight; the drawn weights are
/// scaled to the weight the sizes not enumerated carry.
fn add_random(
    out: &mut Vec<(Vec<bool>, f64)>,
    m: usize,
    mut left: usize,
    full_sizes: usize,
    sizes: usize,
    paired: usize,
    weight_of_size: &[f64],
) {
    let fixed = out.len();
    let mut rest: Vec<f64> = weight_of_size.to_vec();
    for w in rest.iter_mut().take(paired) {
        *w /= 2.0;
    }
    let rest = &rest[full_sizes..sizes];
    let total: f64 = rest.iter().sum();
    let mut rng = StdRng::seed_from_u64(SEED);
    let mut seen: HashMap<Vec<bool>, usize> = HashMap::new();
    let mut draws = 0;
    while left > 0 && draws < 4 * (left + 16) * 4 {
        draws += 1;
        let mut target = rng.random_range(0.0..total);
        let mut pick = rest.len() - 1;
        for (index, w) in rest.iter().enumerate() {
            if target < *w {
                pick = index;
                break;
            }
            target -= w;
        }
        let s = pick + full_sizes + 1;
        let mut order: Vec<usize> = (0..m).collect();
        for i in 0..s {
            let j = rng.random_range(i..m);
            order.swap(i, j);
        }
        let mut mask = vec![false; m];
        for &feature in &order[..s] {
            mask[feature] = true;
        }
        let complement: Vec<bool> = mask.iter().map(|b| !b).collect();
        for candidate in [Some(mask), (s <= paired).then_some(complement)]
            .into_iter()
            .flatten()
        {
            if let Some(&at) = seen.get(&candidate) {
                out[at].1 += 1.0;
            } else if left > 0 {
                seen.insert(candidate.clone(), out.len());
                out.push((candidate, 1.0));
                left -= 1;
            }
        }
    }
    let drawn: f64 = out[fixed..].iter().map(|(_, w)| w).sum();
    let owed: f64 = weight_of_size[full_sizes..].iter().sum();
    if drawn > 0.0 {
        for (_, w) in &mut out[fixed..] {
            *w *= owed / drawn;
        }
    }
}

/// Every mask over `m` features with `s` set, in lexicographic order of the set positions.
fn subsets_of_size(m: usize, s: usize) -> Vec<Vec<bool>> {
    let mut out = Vec::new();
    let mut chosen: Vec<usize> = (0..s).collect();
    loop {
        let mut mask = vec![false; m];
        for &c in &chosen {
            mask[c] = true;
        }
        out.push(mask);
        let Some(i) = (0..s).rev().find(|&i| chosen[i] < m - s + i) else {
            return out;
        };
        chosen[i] += 1;
        for j in i + 1..s {
            chosen[j] = chosen[j - 1] + 1;
        }
    }
}

/// The weighted least-squares contributions with Σφ = `total`: the last feature is eliminated
/// (φ_m = total − Σ others), as shap's `solve` does, and the normal equations solved.
fn solve(coalitions: &[(Vec<bool>, f64)], targets: &[f64], total: f64, m: usize) -> Vec<f64> {
    let n = m - 1;
    let mut normal = vec![0.0; n * n];
    let mut rhs = vec![0.0; n];
    let mut x = vec![0.0; n];
    for ((mask, weight), &y) in coalitions.iter().zip(targets) {
        let last = f64::from(u8::from(mask[n]));
        for (j, slot) in x.iter_mut().enumerate() {
            *slot = f64::from(u8::from(mask[j])) - last;
        }
        let y = y - last * total;
        for a in 0..n {
            if x[a] == 0.0 {
                continue;
            }
            rhs[a] += weight * x[a] * y;
            for b in 0..n {
                normal[a * n + b] += weight * x[a] * x[b];
            }
        }
    }
    let mut phi = gauss(normal, rhs, n);
    let rest: f64 = phi.iter().sum();
    phi.push(total - rest);
    phi
}

/// Solves `a · x = b` (n × n) by Gaussian elimination with partial pivoting; a singular
/// direction (a feature no coalition separates) gets 0.
fn gauss(mut a: Vec<f64>, mut b: Vec<f64>, n: usize) -> Vec<f64> {
    let scale = a
        .iter()
        .fold(0.0f64, |m, v| m.max(v.abs()))
        .max(f64::MIN_POSITIVE);
    let mut pivot_of = vec![usize::MAX; n];
    let mut row = 0;
    for column in 0..n {
        let Some(best) =
            (row..n).max_by(|&i, &j| a[i * n + column].abs().total_cmp(&a[j * n + column].abs()))
        else {
            break;
        };
        if a[best * n + column].abs() <= 1e-12 * scale {
            continue;
        }
        for k in 0..n {
            a.swap(row * n + k, best * n + k);
        }
        b.swap(row, best);
        for i in 0..n {
            if i == row {
                continue;
            }
            let factor = a[i * n + column] / a[row * n + column];
            if factor == 0.0 {
                continue;
            }
            for k in column..n {
                a[i * n + k] -= factor * a[row * n + k];
            }
            b[i] -= factor * b[row];
        }
        pivot_of[column] = row;
        row += 1;
    }
    (0..n)
        .map(|column| match pivot_of[column] {
            usize::MAX => 0.0,
            r => b[r] / a[r * n + column],
        })
        .collect()
}
