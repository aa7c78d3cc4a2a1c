// The fused scenario kernel: docs/scenario-model.md on the GPU, loaded by portopt/engine/cupy_engine.py.
//
// Launch shape: one block per scenario (a grid-stride loop lets a smaller grid cover more), a
// block size that is a multiple of 32 (a launch parameter: 128 and 256 are the candidates; the
// final choice must come from measurement on a GPU, bench/gpu_check.sh times 2-3 sizes).
//   1. Every thread draws the shocks of some quarters of the market path into shared memory
//      (Philox calls in parallel over quarters); the last thread draws labour, backlog and the
//      sector factors.
//   2. The serial recursions run in place, one thread each: the six OU factors (lanes 0-5 of
//      warp 0), SOFR (warp 1), the coercion chain (warp 2) and inflation's CPI index (warp 3);
//      then every thread adds the coercion jumps to some quarters. The path: H rows of
//      PATH_STRIDE doubles (six log prices, rate, coercion flag, CPI index).
//   3. Threads stride over chokepoints (stress), then over projects: one thread per project,
//      looping over the H quarters against the path in shared memory. Outputs are written
//      (scenario, project) row-major, coalesced across the threads of a warp.
// With a portfolio (the _cash entry point) each warp reduces w_i x amount_i per quarter by
// shuffles and adds it to its own row of shared memory, and the block sums the warps' rows in
// warp order: one global write per (scenario, quarter), no atomics, and the same sum on every
// run. Nothing of shape scenarios x projects x quarters exists anywhere.
//
// Dynamic shared memory (doubles): H * PATH_STRIDE (path) + H (ub) + [cash] warps * H * 3.
// The host build of the same body is kernels/host_check.cu.
#include "scenario_body.cuh"

// Compile-time launch bounds (NVRTC options -DPORTOPT_BLOCK=... -DPORTOPT_MIN_BLOCKS=...): the
// block size the kernel is launched with, and the blocks per SM the register budget must allow
// (at 256 threads, 2 blocks cap the kernel at 128 registers: measured by ptxas, 0 spills for the
// plain kernel, under 100 bytes for the cash one; 4 blocks force spills). Tune both on a GPU.
#ifndef PORTOPT_BLOCK
#define PORTOPT_BLOCK 256
#endif
#ifndef PORTOPT_MIN_BLOCKS
#define PORTOPT_MIN_BLOCKS 2
#endif

namespace portopt {

struct Outputs {
    double* pv_draw;
    double* pv_japan;
    double* pv_us;
    int* recoup_q;
    int* complete_q;
    double* online_share;
    double* balance_end;
    double* pv_floor;
    double* stress;
    double* coercion_share;
    int* coercion_episodes;
};

__device__ __forceinline__ double warp_sum(double v) {
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
    return v;
}

__device__ __forceinline__ void write_project(const Outputs& out, u64 at, const ProjectOut& o) {
    out.pv_draw[at] = o.pv_draw;
    out.pv_japan[at] = o.pv_japan;
    out.pv_us[at] = o.pv_us;
    out.recoup_q[at] = o.recoup_q;
    out.complete_q[at] = o.complete_q;
    out.online_share[at] = o.online_share;
    out.balance_end[at] = o.balance_end;
    out.pv_floor[at] = o.pv_floor;
}

template <bool CASH>
__device__ void simulate(const Params& p, u32 first, int n, const Outputs& out,
                         const double* weights, double* cash_japan, double* cash_us,
                         double* cash_draw) {
    extern __shared__ double shared[];
    double* path = shared;
    double* ub = path + p.H * PATH_STRIDE;
    double* partial = ub + p.H;  // [warp][t][3], only with CASH
    __shared__ ScenarioDraws draws;
    __shared__ double share;

    const int tid = threadIdx.x;
    const int lane = tid & 31;
    const int warp = tid >> 5;
    const int warps = blockDim.x >> 5;

    for (int b = blockIdx.x; b < n; b += gridDim.x) {
        const u32 scenario = first + static_cast<u32>(b);

        for (int t = tid; t < p.H; t += blockDim.x)
            market_shocks(p, scenario, t, path + t * PATH_STRIDE, ub + t);
        if (tid == blockDim.x - 1) draws = scenario_draws(p, scenario);
        if (CASH)
            for (int j = tid; j < warps * p.H * 3; j += blockDim.x) partial[j] = 0.0;
        __syncthreads();

        // the nine serial chains on threads of different warps where the block has them,
        // so that the three kinds of loop do not diverge within a warp
        if (tid < N_FACTORS) {
            market_chain(p, path, tid);
        } else if (tid == (blockDim.x >= 96 ? 32 : N_FACTORS)) {
            market_chain(p, path, N_FACTORS);
        } else if (tid == (blockDim.x >= 96 ? 64 : N_FACTORS + 1)) {
            const MarketSummary m = coercion_chain(p, path, ub);
            share = m.coercion_share;
            out.coercion_share[b] = m.coercion_share;
            out.coercion_episodes[b] = m.episodes;
        } else if (tid == (blockDim.x >= 128 ? 96 : N_FACTORS + 2)) {
            market_chain(p, path, CHAIN_INFLATION);
        }
        __syncthreads();
        for (int t = tid; t < p.H; t += blockDim.x) add_jumps(p, path + t * PATH_STRIDE);
        __syncthreads();

        for (int k = tid; k < p.C; k += blockDim.x)
            out.stress[static_cast<u64>(b) * p.C + k] = chokepoint_stress(p, scenario, k, share);

        // every thread of the block runs the same number of project rounds and quarters, so the
        // warp shuffles of the CASH path see all 32 lanes; lanes past the last project add 0
        for (int base = 0; base < p.P; base += blockDim.x) {
            const int i = base + tid;
            const bool active = i < p.P;
            if (!CASH && !active) break;
            Project s;
            double w = 0.0;
            if (active) {
                s = project_setup(p, scenario, i, draws);
                if (CASH) w = weights[i];
            }
            for (int t = 0; t < p.H; ++t) {
                QuarterCash q = {0.0, 0.0, 0.0};
                if (active) q = project_quarter(p, s, t, path + t * PATH_STRIDE);
                if (CASH) {
                    const double j = warp_sum(w * q.japan);
                    const double u = warp_sum(w * q.us);
                    const double d = warp_sum(w * q.draw);
                    if (lane == 0) {
                        double* row = partial + (warp * p.H + t) * 3;
                        row[0] += j;
                        row[1] += u;
                        row[2] += d;
                    }
                }
            }
            if (active) write_project(out, static_cast<u64>(b) * p.P + i, project_finish(p, s));
        }

        if (CASH) {
            __syncthreads();
            for (int t = tid; t < p.H; t += blockDim.x) {
                double j = 0.0, u = 0.0, d = 0.0;
                for (int v = 0; v < warps; ++v) {
                    const double* row = partial + (v * p.H + t) * 3;
                    j += row[0];
                    u += row[1];
                    d += row[2];
                }
                const u64 at = static_cast<u64>(b) * p.H + t;
                cash_japan[at] = j;
                cash_us[at] = u;
                cash_draw[at] = d;
            }
        }
        __syncthreads();  // the next scenario of this block reuses the shared memory
    }
}

}  // namespace portopt

#define PORTOPT_KERNEL_ARGS                                                                      \
    const double *pf, const int *pi, const unsigned int *centity, const double *exposed,         \
        const double *sc, const int *ic, unsigned int first, int n, double *pv_draw,             \
        double *pv_japan, double *pv_us, int *recoup_q, int *complete_q, double *online_share,   \
        double *balance_end, double *pv_floor, double *stress, double *coercion_share,           \
        int *coercion_episodes

#define PORTOPT_SETUP                                                                            \
    const portopt::Params p = portopt::make_params(pf, pi, centity, exposed, sc, ic);            \
    const portopt::Outputs out = {pv_draw,      pv_japan,    pv_us,    recoup_q,                \
                                  complete_q,   online_share, balance_end, pv_floor, stress,      \
                                  coercion_share, coercion_episodes}

// Outcomes of scenarios first .. first + n - 1 (one block per scenario).
extern "C" __global__ void __launch_bounds__(PORTOPT_BLOCK, PORTOPT_MIN_BLOCKS)
scenario_outcomes(PORTOPT_KERNEL_ARGS) {
    PORTOPT_SETUP;
    portopt::simulate<false>(p, first, n, out, nullptr, nullptr, nullptr, nullptr);
}

// The same, plus the portfolio's cash per (scenario, quarter): sum_i weights_i x japan/us/draw.
extern "C" __global__ void __launch_bounds__(PORTOPT_BLOCK, PORTOPT_MIN_BLOCKS)
scenario_outcomes_cash(PORTOPT_KERNEL_ARGS, const double* weights, double* cash_japan,
                       double* cash_us, double* cash_draw) {
    PORTOPT_SETUP;
    portopt::simulate<true>(p, first, n, out, weights, cash_japan, cash_us, cash_draw);
}
