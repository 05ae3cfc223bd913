//! A slot's cache of checked shaders and compute pipelines, shared by the
//! jobs that run on the slot one after another, so a warm job neither parses
//! and checks its WGSL again nor has the driver compile its pipeline again.
//!
//! Shaders are keyed by the BLAKE3 hash of their source *and* the limits
//! they were checked against (a job may have other quotas than the one that
//! filled the entry), and the entry is the check's verdict: the compiled
//! module, or the `invalid shader` error, which is returned again without
//! parsing. Only verdicts that depend on nothing but the source and the
//! limits are remembered: an `invalid shader` refusal, never an out-of-memory
//! or device error. Pipelines are keyed by the source hash and the entry
//! point; only pipelines that were created are kept.
//!
//! Nothing here holds a job's data: a module or pipeline is code, derived
//! from source the next job submits again itself. Buffers and bind groups
//! are never cached (see `SECURITY.md`).
//!
//! Bounded, not clever: when a map is full it is cleared (the jobs of one
//! slot use a handful of shaders; a job that cycles through many only
//! loses the cache's benefit).

use std::collections::HashMap;

use serde::Serialize;

use crate::GpuError;
use crate::shader_check::ShaderLimits;

/// Shader verdicts (modules or refusals) kept per slot.
pub const MAX_CACHED_SHADERS: usize = 64;
/// Compute pipelines kept per slot.
pub const MAX_CACHED_PIPELINES: usize = 64;

/// Counters of a slot's pipeline cache, for tests and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PipelineCacheStats {
    /// `create_shader` answered from the cache (an accepted module, or a
    /// remembered refusal).
    pub shader_hits: u64,
    /// `create_shader` that checked and compiled the source.
    pub shader_misses: u64,
    /// `create_pipeline` answered from the cache.
    pub pipeline_hits: u64,
    /// `create_pipeline` that had the driver build the pipeline.
    pub pipeline_misses: u64,
    /// Shader verdicts held now.
    pub shaders: usize,
    /// Pipelines held now.
    pub pipelines: usize,
}

/// What the cache knows about one shader source under one set of limits.
pub(crate) type Verdict = Result<wgpu::ShaderModule, GpuError>;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct ShaderKey {
    source: [u8; 32],
    limits: ShaderLimits,
}

#[derive(Default)]
pub(crate) struct PipelineCache {
    shaders: HashMap<ShaderKey, Verdict>,
    pipelines: HashMap<([u8; 32], String), wgpu::ComputePipeline>,
    stats: PipelineCacheStats,
}

impl PipelineCache {
    /// The remembered verdict on `source` under `limits`, counting a hit or
    /// a miss.
    pub(crate) fn shader(&mut self, source: &[u8; 32], limits: &ShaderLimits) -> Option<Verdict> {
        let key = ShaderKey {
            source: *source,
            limits: *limits,
        };
        let found = self.shaders.get(&key).cloned();
        if found.is_some() {
            self.stats.shader_hits += 1;
        } else {
            self.stats.shader_misses += 1;
        }
        found
    }

    /// Remembers a verdict that only the source and the limits decide.
    pub(crate) fn remember_shader(
        &mut self,
        source: &[u8; 32],
        limits: &ShaderLimits,
        verdict: &Verdict,
    ) {
        if let Err(e) = verdict
            && e.kind != crate::ErrorKind::InvalidShader
        {
            return;
        }
        if self.shaders.len() >= MAX_CACHED_SHADERS {
            self.shaders.clear();
        }
        let key = ShaderKey {
            source: *source,
            limits: *limits,
        };
        self.shaders.insert(key, verdict.clone());
    }

    /// The pipeline of `entry_point` in the shader whose source hashes to
    /// `source`, counting a hit or a miss.
    pub(crate) fn pipeline(
        &mut self,
        source: &[u8; 32],
        entry_point: &str,
    ) -> Option<wgpu::ComputePipeline> {
        let found = self
            .pipelines
            .get(&(*source, entry_point.to_owned()))
            .cloned();
        if found.is_some() {
            self.stats.pipeline_hits += 1;
        } else {
            self.stats.pipeline_misses += 1;
        }
        found
    }

    pub(crate) fn remember_pipeline(
        &mut self,
        source: &[u8; 32],
        entry_point: &str,
        pipeline: &wgpu::ComputePipeline,
    ) {
        if self.pipelines.len() >= MAX_CACHED_PIPELINES {
            self.pipelines.clear();
        }
        self.pipelines
            .insert((*source, entry_point.to_owned()), pipeline.clone());
    }

    pub(crate) fn stats(&self) -> PipelineCacheStats {
        PipelineCacheStats {
            shaders: self.shaders.len(),
            pipelines: self.pipelines.len(),
            ..self.stats
        }
    }
}
