// The scenario model of docs/scenario-model.md, one scenario and one project at a time.
//
// Plain __host__ __device__ C++ with no CUDA intrinsics: kernels/scenario.cu calls it with a
// block per scenario and a thread per project; kernels/host_check.cu calls it serially on the
// CPU, which is how CI checks it against the NumPy engine (portopt/engine/numpy_engine.py) without a
// GPU. Every formula is evaluated in the NumPy engine's order, operation by operation (its code
// is the reference where the model page is silent), and the CUDA build runs with --fmad=false so
// no multiply-add is fused: both builds then differ from NumPy only by the last-ulp differences
// of exp, log, sin and cos.
//
// Inputs: portopt/engine/inputs.py's EngineInputs, packed by portopt/engine/cupy_engine.py's
// pack_inputs() into six flat buffers (the enums below follow the tuples PF_FIELDS, PI_FIELDS
// and SCALAR_FIELDS there and the order of its ic array; keep them in step, the host-build
// tests fail when they are not):
//
//   pf      double [PF_COUNT][P]   per-project doubles, one contiguous column per field, so the
//                                  threads of a warp (consecutive projects) read coalesced
//   pi      int32  [PI_COUNT][P]   per-project ints (the Philox entity as its uint32 bits)
//   centity uint32 [C]             chokepoint Philox entities
//   exposed double [C]             1.0 for a China-exposed chokepoint, else 0.0
//   sc      double [S_DISCOUNT+H]  scalars, then chol (7x7 row-major), ou_a, ou_b, jump and
//                                  the discount table v^(t+1)
//   ic      int32  [I_COUNT]       integer scalars (the key as uint32 bits)
//
// The per-scenario market path is an array of H rows of PATH_STRIDE doubles: the six log
// prices x_k[t] + J_k c[t], rate[t] = max(r[t], floor), and the coercion flag c[t] (0.0 or 1.0).
#pragma once

#include "philox.cuh"

namespace portopt {

enum ProjectDouble {
    PF_UNIT,
    PF_OPEX_SHARE,
    PF_BETA,
    PF_OFFTAKE_SHARE,
    PF_OFFTAKE_FLOOR,
    PF_OVERRUN_MEDIAN,
    PF_OVERRUN_SIGMA,
    PF_DELAY_MEDIAN,
    PF_PERMIT_MULT,
    PF_PERMIT_VOL,
    PF_INTENSITY,
    PF_FAIL_THRESHOLD,
    PF_SPREAD,
    PF_LEVERAGE,
    PF_SENIOR_SPREAD,
    PF_BONUS_SHARE,
    PF_ITC,
    PF_PTC_UNIT,
    PF_YEN_SHARE,
    PF_INDEXATION,
    PF_OFFTAKE_INDEXED,
    PF_CREDIT_INDEXED,
    PF_FUEL_SHARE,
    PF_HURDLE_GROWTH,
    PF_FUND_EQUITY,
    PF_COUNT
};

enum ProjectInt {
    PI_ENTITY,
    PI_Q0,
    PI_BUILD,
    PI_LIFE,
    PI_FACTOR,
    PI_BACKLOG,
    PI_SECTOR,
    PI_SENIOR_TENOR,
    PI_ANNUITY,
    PI_OFFTAKE_QUARTERS,
    PI_DEP_ROW,
    PI_CREDIT_QUARTERS,
    PI_FUNDING,
    PI_STACK,
    PI_COUNT
};

enum Scalar {
    S_SOFR_THETA,
    S_SOFR_R0,
    S_SOFR_FLOOR,
    S_P_START,
    S_P_END,
    S_TAX_RATE,
    S_NOL_LIMIT,
    S_SALVAGE_SHARE,
    S_SHARE_BEFORE,
    S_SHARE_AFTER,
    S_REALLOC_SHARE,
    S_LABOUR_DELAY_BETA,
    S_OVERRUN_LABOUR_CORR,
    S_OVERRUN_LABOUR_PERP,
    S_BACKLOG_MEAN,
    S_BACKLOG_VOL,
    S_SECTOR_LOAD,
    S_SECTOR_PERP,
    S_STRESS_VOL,
    S_STRESS_HALF_VAR,
    S_STRESS_UPLIFT,
    S_INFL_THETA,
    S_INFL_R0,
    S_INFL_A,
    S_INFL_B,
    S_INFL_RHO,
    S_INFL_PERP,
    S_CHOL,                  // 49 values, L[j][k] at S_CHOL + 7 j + k
    S_OU_A = S_CHOL + 49,    // 7 values: six factors, then SOFR
    S_OU_B = S_OU_A + 7,     // 7 values
    S_JUMP = S_OU_B + 7,     // 6 values
    S_DISCOUNT = S_JUMP + 6  // N_DISCOUNT x H values: v_k^(t+1), then the depreciation rates
};

enum IntScalar {
    I_P,
    I_C,
    I_H,
    I_W0,
    I_W1,
    I_WINDOW_LEN,
    I_RAMP_QUARTERS,
    I_KEY0,
    I_KEY1,
    I_MAX_DELAY,
    I_SEMIANNUAL,
    I_REALLOC_QUARTERS,
    I_DEP_YEARS,
    I_SHORTFALL_ACCRUES,
    I_ESCALATES,
    I_FX_PARITY,
    I_COUNT
};

const int N_FACTORS = 6;
const int N_DISCOUNT = 4;  // usd_bonds, yen_loans, reserves, yen swapped at parity: the
                           // rows of the discount table
const int DISCOUNT_PARITY = 3;
const int FACTOR_GAS = 1;
const int FACTOR_USDJPY = 5;
const int N_SECTORS = 8;
const int PATH_STRIDE = 9;  // six log prices, rate, coercion flag, CPI index
const int PATH_RATE = 6;
const int PATH_COERCED = 7;
const int PATH_CPI = 8;
const int CHAIN_INFLATION = N_FACTORS + 1;  // market_chain's column for the CPI index
const u32 ENTITY_MARKET = 0u;
const u32 ENTITY_LABOUR = 1u;
const u32 ENTITY_SECTOR0 = 16u;

// The engine's inputs as the body reads them: pointers into the packed buffers plus the
// integer scalars unpacked once.
struct Params {
    const double* pf;
    const int* pi;
    const u32* centity;
    const double* exposed;
    const double* sc;
    int P, C, H, w0, w1, window_len, ramp_quarters, max_delay, semiannual, realloc_quarters,
        dep_years, shortfall_accrues, escalates, fx_parity;
    const double* dep_rates;  // [rows][dep_years] annual rates, after the discount tables
    Key key;
};

PORTOPT_HD Params make_params(const double* pf, const int* pi, const u32* centity,
                              const double* exposed, const double* sc, const int* ic) {
    Params p;
    p.pf = pf;
    p.pi = pi;
    p.centity = centity;
    p.exposed = exposed;
    p.sc = sc;
    p.P = ic[I_P];
    p.C = ic[I_C];
    p.H = ic[I_H];
    p.w0 = ic[I_W0];
    p.w1 = ic[I_W1];
    p.window_len = ic[I_WINDOW_LEN];
    p.ramp_quarters = ic[I_RAMP_QUARTERS];
    p.max_delay = ic[I_MAX_DELAY];
    p.semiannual = ic[I_SEMIANNUAL];
    p.realloc_quarters = ic[I_REALLOC_QUARTERS];
    p.dep_years = ic[I_DEP_YEARS];
    p.shortfall_accrues = ic[I_SHORTFALL_ACCRUES];
    p.escalates = ic[I_ESCALATES];
    p.fx_parity = ic[I_FX_PARITY];
    p.dep_rates = sc + S_DISCOUNT + N_DISCOUNT * p.H;
    p.key.k0 = static_cast<u32>(ic[I_KEY0]);
    p.key.k1 = static_cast<u32>(ic[I_KEY1]);
    return p;
}

PORTOPT_HD double pfield(const Params& p, int field, int i) { return p.pf[field * p.P + i]; }
PORTOPT_HD int pint(const Params& p, int field, int i) { return p.pi[field * p.P + i]; }

// ---------------------------------------------------------------------------------------------
// Market path. The draws run in parallel over quarters (market_shocks), the three kinds of
// serial recursion in parallel with each other (market_chain for each factor and SOFR,
// coercion_chain), and the coercion jumps again in parallel over quarters (add_jumps). The
// host build calls them one after the other; the arithmetic is the same.

// Quarter t's shocks b_j e_j (e_j = sum_{k<=j} L[j,k] z_k in increasing k, then times b_j) into
// row[0..6], inflation's shock b_pi (rho e_6 + perp z_7) into row[8], and the coercion
// uniforms: ua into row[7], ub into *ub.
PORTOPT_HD void market_shocks(const Params& p, u32 scenario, int t, double* row, double* ub) {
    double z[8];
    for (u32 purpose = 0; purpose < 4; ++purpose) {
        const Double2 n = normals(draw(p.key, scenario, ENTITY_MARKET, static_cast<u32>(t), purpose));
        z[2 * purpose] = n.a;
        z[2 * purpose + 1] = n.b;
    }
    const Double2 u = uniforms(draw(p.key, scenario, ENTITY_MARKET, static_cast<u32>(t), 4u));
    const double* L = p.sc + S_CHOL;
    for (int j = 0; j <= N_FACTORS; ++j) {
        double e = L[7 * j] * z[0];
        for (int k = 1; k <= j; ++k) e += L[7 * j + k] * z[k];
        row[j] = e * p.sc[S_OU_B + j];
        if (j == N_FACTORS)
            row[PATH_CPI] = (p.sc[S_INFL_RHO] * e + p.sc[S_INFL_PERP] * z[7]) * p.sc[S_INFL_B];
    }
    row[PATH_COERCED] = u.a;
    *ub = u.b;
}

// Column j of the path, in place over the quarters: for a factor (j < 6)
// x_j[t] = a_j x_j[t-1] + b_j e_j[t] from x_j[-1] = 0; for SOFR (j = 6)
// r[t] = theta + a_r (r[t-1] - theta) + b_r e_6[t] from r[-1] = r0, stored as max(r, floor);
// for inflation (j = CHAIN_INFLATION) pi[t] = ((pi[t-1] - theta) a + theta) + shock from
// pi[-1] = r0, and the CPI index I[t] = I[t-1] (pi[t] 0.25 + 1) from I[-1] = 1 into column 8
// (1.0 throughout when nothing escalates).
PORTOPT_HD void market_chain(const Params& p, double* path, int j) {
    if (j == CHAIN_INFLATION) {
        const double ta = p.sc[S_INFL_THETA];
        const double aa = p.sc[S_INFL_A];
        double pi = p.sc[S_INFL_R0];
        double index = 1.0;
        for (int t = 0; t < p.H; ++t) {
            double* cell = path + t * PATH_STRIDE + PATH_CPI;
            if (p.escalates) {
                pi = ((pi - ta) * aa + ta) + *cell;
                index = index * (pi * 0.25 + 1.0);
            }
            *cell = index;
        }
        return;
    }
    const double a = p.sc[S_OU_A + j];
    if (j < N_FACTORS) {
        double x = 0.0;
        for (int t = 0; t < p.H; ++t) {
            double* cell = path + t * PATH_STRIDE + j;
            x = x * a + *cell;
            *cell = x;
        }
        return;
    }
    const double theta = p.sc[S_SOFR_THETA];
    const double floor_rate = p.sc[S_SOFR_FLOOR];
    double r = p.sc[S_SOFR_R0];
    for (int t = 0; t < p.H; ++t) {
        double* cell = path + t * PATH_STRIDE + PATH_RATE;
        r = ((r - theta) * a + theta) + *cell;
        *cell = r > floor_rate ? r : floor_rate;
    }
}

struct MarketSummary {
    double coercion_share;
    int episodes;
};

// The coercion chain: an episode starts when ua_t < p_start (counted), goes on while
// ub_t >= p_end. Replaces row[7] (ua) by the flag c[t] (0.0 or 1.0).
PORTOPT_HD MarketSummary coercion_chain(const Params& p, double* path, const double* ub) {
    bool coerced = false;
    int episodes = 0;
    double in_window = 0.0;
    for (int t = 0; t < p.H; ++t) {
        double* cell = path + t * PATH_STRIDE + PATH_COERCED;
        const bool started = !coerced && *cell < p.sc[S_P_START];
        coerced = coerced ? ub[t] >= p.sc[S_P_END] : started;
        episodes += started ? 1 : 0;
        const double c = coerced ? 1.0 : 0.0;
        if (p.w0 <= t && t <= p.w1) in_window += c;
        *cell = c;
    }
    MarketSummary m;
    m.coercion_share = in_window / p.window_len;
    m.episodes = episodes;
    return m;
}

// Quarter t's log prices x_k + J_k c (after the chains).
PORTOPT_HD void add_jumps(const Params& p, double* row) {
    const double c = row[PATH_COERCED];
    for (int j = 0; j < N_FACTORS; ++j) row[j] = row[j] + p.sc[S_JUMP + j] * c;
}

// ---------------------------------------------------------------------------------------------
// Per-scenario draws at quarter 0: labour tightness, equipment backlog, sector factors.

struct ScenarioDraws {
    double labour;
    double backlog;
    double sector[N_SECTORS];
};

PORTOPT_HD ScenarioDraws scenario_draws(const Params& p, u32 scenario) {
    ScenarioDraws d;
    const Double2 lb = normals(draw(p.key, scenario, ENTITY_LABOUR, 0u, 0u));
    d.labour = lb.a;
    const double b = p.sc[S_BACKLOG_MEAN] + p.sc[S_BACKLOG_VOL] * lb.b;
    d.backlog = b > 0.0 ? b : 0.0;
    for (int j = 0; j < N_SECTORS; ++j)
        d.sector[j] = normals(draw(p.key, scenario, ENTITY_SECTOR0 + j, 0u, 0u)).a;
    return d;
}

// m_k = exp(sigma_m z0 - sigma_m^2 / 2) (1 + (uplift exposed_k) coercion_share)
PORTOPT_HD double chokepoint_stress(const Params& p, u32 scenario, int k, double share) {
    const double z = normals(draw(p.key, scenario, p.centity[k], 0u, 0u)).a;
    const double m = exp(p.sc[S_STRESS_VOL] * z - p.sc[S_STRESS_HALF_VAR]);
    return m * (p.sc[S_STRESS_UPLIFT] * p.exposed[k] * share + 1.0);
}

// ---------------------------------------------------------------------------------------------
// Per project: the schedule once, then one waterfall step per quarter.

struct Project {
    // schedule
    int q0, comp, last_draw, fq, op_last, end, factor;
    bool failed;
    double draw_amount, debt_draw, salvage, bonus_amount, scheduled, itc_amount;
    // per-project constants read every quarter
    double unit, opex_unit, phi, one_minus_phi, offtake_floor, beta, spread, senior_spread,
        ptc_unit, yen_share, one_minus_yen, iota, iota_floor, iota_credit, fuel, one_minus_fuel,
        hurdle, omega;
    int tenor, annuity, offtake_quarters, credit_quarters, stack;
    const double* dep_rates;  // this project's row
    const double* discount;   // its funding source's row
    const double* parity;     // the row of yen funding swapped at covered interest parity
    // state carried through the quarters
    double balance, unpaid, senior, nol, pv_draw, pv_japan, pv_us, pv_floor, online;  // J = balance + unpaid
    double stack_due, stack_capital;  // the fund's priority account (not pari passu)
    int zero_quarters;
};

PORTOPT_HD Project project_setup(const Params& p, u32 scenario, int i, const ScenarioDraws& d) {
    const u32 entity = static_cast<u32>(pint(p, PI_ENTITY, i));
    const Double2 n01 = normals(draw(p.key, scenario, entity, 0u, 0u));
    const Double2 n23 = normals(draw(p.key, scenario, entity, 0u, 1u));
    const Double2 u = uniforms(draw(p.key, scenario, entity, 0u, 2u));
    Project s;

    // M = (1 + med) exp(sigma_o (rho_ol L + sqrt(1 - rho_ol^2) z0))
    double zeta = p.sc[S_OVERRUN_LABOUR_CORR] * d.labour + p.sc[S_OVERRUN_LABOUR_PERP] * n01.a;
    const double overrun = (pfield(p, PF_OVERRUN_MEDIAN, i) + 1.0) *
                           exp(zeta * pfield(p, PF_OVERRUN_SIGMA, i));

    // Dc = (dm mult) exp(vol z1 + (beta_L intensity) L) + B [backlog sector], capped, floored
    const double expo = pfield(p, PF_PERMIT_VOL, i) * n01.b +
                        (p.sc[S_LABOUR_DELAY_BETA] * pfield(p, PF_INTENSITY, i)) * d.labour;
    double dc = (pfield(p, PF_DELAY_MEDIAN, i) * pfield(p, PF_PERMIT_MULT, i)) * exp(expo);
    dc += pint(p, PI_BACKLOG, i) ? d.backlog : 0.0;
    if (dc > static_cast<double>(p.max_delay)) dc = static_cast<double>(p.max_delay);
    const int delay = static_cast<int>(floor(dc));

    // failed = sqrt(rho) F_sector + sqrt(1 - rho) z2 < Phi^-1(p)
    const double xf = p.sc[S_SECTOR_LOAD] * d.sector[pint(p, PI_SECTOR, i)] +
                      p.sc[S_SECTOR_PERP] * n23.a;
    s.failed = xf < pfield(p, PF_FAIL_THRESHOLD, i);

    const int build = pint(p, PI_BUILD, i) + delay;
    s.q0 = pint(p, PI_Q0, i);
    s.comp = s.q0 + build;
    int abandon = static_cast<int>(floor(u.a * static_cast<double>(build)));
    if (abandon > build - 1) abandon = build - 1;
    const int fq = s.q0 + abandon;
    const double lev = pfield(p, PF_LEVERAGE, i);
    s.draw_amount = overrun / static_cast<double>(build);
    s.debt_draw = (lev - 1.0) * s.draw_amount;
    s.last_draw = s.failed ? fq : s.comp - 1;
    s.salvage =
        ((p.sc[S_SALVAGE_SHARE] * lev) * s.draw_amount) * static_cast<double>(fq - s.q0 + 1);
    s.fq = s.failed ? fq : -1;
    s.op_last = s.failed ? -1 : s.comp + pint(p, PI_LIFE, i) - 1;
    s.end = s.failed ? fq : s.op_last;
    s.factor = pint(p, PI_FACTOR, i);
    const double basis = lev * overrun;
    const double bonus = pfield(p, PF_BONUS_SHARE, i);
    s.bonus_amount = basis * bonus;
    s.scheduled = basis * (1.0 - bonus);
    s.itc_amount = pfield(p, PF_ITC, i) * basis;

    s.unit = pfield(p, PF_UNIT, i);
    s.opex_unit = pfield(p, PF_OPEX_SHARE, i) * s.unit;
    s.phi = pfield(p, PF_OFFTAKE_SHARE, i);
    s.one_minus_phi = 1.0 - s.phi;
    s.offtake_floor = pfield(p, PF_OFFTAKE_FLOOR, i);
    s.beta = pfield(p, PF_BETA, i);
    s.spread = pfield(p, PF_SPREAD, i);
    s.senior_spread = pfield(p, PF_SENIOR_SPREAD, i);
    s.ptc_unit = pfield(p, PF_PTC_UNIT, i);
    s.yen_share = pfield(p, PF_YEN_SHARE, i);
    s.one_minus_yen = 1.0 - s.yen_share;
    s.tenor = pint(p, PI_SENIOR_TENOR, i);
    s.annuity = pint(p, PI_ANNUITY, i);
    s.offtake_quarters = pint(p, PI_OFFTAKE_QUARTERS, i);
    s.credit_quarters = pint(p, PI_CREDIT_QUARTERS, i);
    s.dep_rates = p.dep_rates + pint(p, PI_DEP_ROW, i) * p.dep_years;
    s.discount = p.sc + S_DISCOUNT + pint(p, PI_FUNDING, i) * p.H;
    s.parity = p.sc + S_DISCOUNT + DISCOUNT_PARITY * p.H;
    s.iota = pfield(p, PF_INDEXATION, i);
    s.iota_floor = pfield(p, PF_OFFTAKE_INDEXED, i);
    s.iota_credit = pfield(p, PF_CREDIT_INDEXED, i);
    s.fuel = pfield(p, PF_FUEL_SHARE, i);
    s.one_minus_fuel = 1.0 - s.fuel;
    s.hurdle = pfield(p, PF_HURDLE_GROWTH, i);
    s.omega = pfield(p, PF_FUND_EQUITY, i);
    s.stack = pint(p, PI_STACK, i);
    s.stack_due = 0.0;
    s.stack_capital = 0.0;

    s.balance = 0.0;
    s.unpaid = 0.0;
    s.senior = 0.0;
    s.nol = 0.0;
    s.pv_draw = 0.0;
    s.pv_japan = 0.0;
    s.pv_us = 0.0;
    s.pv_floor = 0.0;
    s.online = 0.0;
    s.zero_quarters = 0;
    return s;
}

struct QuarterCash {
    double japan, us, draw;
};

// Quarter t of project s given the market row of t (PATH_STRIDE doubles), in the order of
// docs/scenario-model.md: draws, operating cash, tax and credits, senior debt service, the MOU
// waterfall and the running PVs.
PORTOPT_HD QuarterCash project_quarter(const Params& p, Project& s, int t, const double* row) {
    const bool building = s.q0 <= t && t <= s.last_draw;
    const double draw_t = building ? s.draw_amount : 0.0;
    const double debt_draw = building ? s.debt_draw : 0.0;
    const double rate = row[PATH_RATE];
    const double i = (s.senior_spread + rate) * 0.25;
    const double interest = s.senior * i;
    const int age = t - s.comp;
    const bool operating = s.comp <= t && t <= s.op_last;

    // ramp = min(1, (t + 1 - comp) / ramp_quarters) while operating, else 0
    double avail = 0.0;
    double ramp = 0.0;
    double top = 0.0;  // the offtake floor's top-up, paid by its guarantor
    if (operating) {
        // once age + 1 >= ramp_quarters the quotient is >= 1 exactly and clips to 1: skip it
        const int age1 = age + 1;
        ramp = age1 >= p.ramp_quarters
                   ? 1.0
                   : static_cast<double>(age1) / static_cast<double>(p.ramp_quarters);
        // rev = (unit ramp) (Pb (1 - phi) + fl phi), fl = max(Pb, f) within the floor's term
        // nominal: Pn = Pb esc, esc = iota (I - 1) + 1; the floor f (iota_f (I - 1) + 1)
        const double gi = row[PATH_CPI] - 1.0;
        const double esc = s.iota * gi + 1.0;
        double pb = s.factor >= 0 ? exp(row[s.factor] * s.beta) : 1.0;
        double floor_nom = s.offtake_floor;
        if (p.escalates) {
            pb = pb * esc;
            floor_nom = (s.iota_floor * gi + 1.0) * s.offtake_floor;
        }
        double fl = pb;
        if (age < s.offtake_quarters && floor_nom > pb) fl = floor_nom;
        const double price = pb * s.one_minus_phi + fl * s.phi;
        const double unit_ramp = s.unit * ramp;
        top = ((fl - pb) * s.phi) * unit_ramp;
        // opex x ((1 - fs) esc + fs (G I)), the fuel at the gas price G = exp(x_gas + J c)
        double opex = s.opex_unit * ramp;
        if (p.escalates || s.fuel != 0.0) {
            double om = p.escalates ? s.one_minus_fuel * esc : s.one_minus_fuel;
            om = om + s.fuel * (exp(row[FACTOR_GAS]) * row[PATH_CPI]);
            opex = opex * om;
        }
        const double ebitda = unit_ramp * price - opex;
        // dep = bonus [age = 0] + scheduled (rate_k / 4); tax after the loss carried forward
        const int k = age >> 2;
        const double dep_rate = k < p.dep_years ? s.dep_rates[k] * 0.25 : 0.0;
        const double dep = (age == 0 ? s.bonus_amount : 0.0) + s.scheduled * dep_rate;
        const double taxable = (ebitda - dep) - interest;
        const double gain = taxable > 0.0 ? taxable : 0.0;
        const double loss = -taxable > 0.0 ? -taxable : 0.0;
        const double cap = p.sc[S_NOL_LIMIT] * gain;
        const double use = s.nol < cap ? s.nol : cap;
        s.nol = (s.nol + loss) - use;
        const double tax = p.sc[S_TAX_RATE] * (gain - use);
        double ptc = s.ptc_unit * ramp;
        if (p.escalates) ptc = ptc * (s.iota_credit * gi + 1.0);  // 45Y, 45Q follow CPI
        const double credit = (age == 0 ? s.itc_amount : 0.0) + (age < s.credit_quarters ? ptc : 0.0);
        const double cfads = (ebitda - tax) + credit;
        avail = cfads > 0.0 ? cfads : 0.0;
    }
    if (t == s.fq) avail += s.salvage;
    if (p.w0 <= t && t <= p.w1) s.online += ramp;

    // senior debt first: interest plus annuity or level principal over the tenor left;
    // everything at the tenor's end and in a failed project's last quarter
    const double b = s.senior;
    double due = 0.0;
    if (operating) {
        const int left = s.tenor - age;
        const double m = static_cast<double>(left > 1 ? left : 1);
        const double level = b / m;
        double principal = level;
        if (s.annuity && i > 0.0) principal = (b * i) / (pow(i + 1.0, m) - 1.0);
        due = interest + principal;
    }
    if (t == s.fq) due = b + interest;
    const double paid_senior = avail < due ? avail : due;
    s.senior = ((s.senior + interest) - paid_senior) + debt_draw;
    double cash = avail - paid_senior;

    // the fund's priority over the sponsor's equity: cash + (1 - omega) p, p = min(cash /
    // omega, due); senior: due = a = a h + draw; preferred: due = u = u h + k (h - 1), then
    // k += draw, and the fund's pro-rata rest cash - omega p returns k
    if (s.stack != 0) {
        const double grown = s.stack_due * s.hurdle;
        double due;
        if (s.stack == 2) {
            due = grown + draw_t;
        } else {
            due = grown + s.stack_capital * (s.hurdle - 1.0);
            s.stack_capital = s.stack_capital + draw_t;
        }
        const double full = cash / s.omega;
        const double pr = full < due ? full : due;
        s.stack_due = due - pr;
        const double rest = cash - s.omega * pr;
        if (s.stack != 2) s.stack_capital = s.stack_capital - (rest < s.stack_capital ? rest : s.stack_capital);
        cash = cash + (1.0 - s.omega) * pr;
    }

    // J = J g + draw (g frozen at 1 after the end); paid = min(s_b cash, J);
    // japan = s_a max(cash - J / s_b, 0) + paid; J -= paid; us = cash - japan. Without
    // shortfall_accrues J = P + U: U += P (g - 1), P += draw, and a payment clears U first.
    double growth = 1.0;
    if (t <= s.end)
        growth = p.semiannual ? sqrt((s.spread + rate) * 0.5 + 1.0) : (s.spread + rate) * 0.25 + 1.0;
    const double share =
        t - s.q0 >= p.realloc_quarters ? p.sc[S_REALLOC_SHARE] : p.sc[S_SHARE_BEFORE];
    double owed;
    if (p.shortfall_accrues) {
        s.balance = s.balance * growth + draw_t;
        owed = s.balance;
    } else {
        s.unpaid += s.balance * (growth - 1.0);
        s.balance += draw_t;
        owed = s.balance + s.unpaid;
    }
    const double part = share * cash;
    const double paid = part < owed ? part : owed;
    double excess = cash - owed / share;
    excess = excess > 0.0 ? excess : 0.0;
    QuarterCash q;
    q.japan = excess * p.sc[S_SHARE_AFTER] + paid;
    q.us = cash - q.japan;
    q.draw = draw_t;
    if (p.shortfall_accrues) {
        s.balance = s.balance - paid;
    } else {  // the carried interest first; a cleared claim is exactly 0
        const double from_unpaid = paid < s.unpaid ? paid : s.unpaid;
        s.unpaid -= from_unpaid;
        s.balance = paid >= owed ? 0.0 : s.balance - (paid - from_unpaid);
    }

    // Japan's PVs at its funding source's rate, the yen-funded share valued at USD/JPY
    const double d = s.discount[t];
    const double dfx = p.fx_parity
                           ? d * s.one_minus_yen + s.yen_share * (s.parity[t] * exp(row[FACTOR_USDJPY]))
                           : d * (s.one_minus_yen + s.yen_share * exp(row[FACTOR_USDJPY]));
    s.pv_japan += dfx * q.japan;
    s.pv_us += d * q.us;
    s.pv_floor += d * top;
    s.pv_draw += dfx * draw_t;
    s.zero_quarters += s.balance + s.unpaid <= 0.0 ? 1 : 0;
    return q;
}

struct ProjectOut {
    double pv_draw, pv_japan, pv_us, online_share, balance_end, pv_floor;
    int recoup_q, complete_q;
};

// The balance is 0 before the first draw, positive from it to the last draw and stays 0 once
// cleared, so the zero quarters after the start give the recoup quarter (as the NumPy engine).
PORTOPT_HD ProjectOut project_finish(const Params& p, const Project& s) {
    ProjectOut o;
    o.pv_draw = s.pv_draw;
    o.pv_japan = s.pv_japan;
    o.pv_us = s.pv_us;
    o.pv_floor = s.pv_floor;
    const int before = s.q0 < p.H ? s.q0 : p.H;
    const int after = s.zero_quarters - before;
    o.recoup_q = after > 0 ? p.H - after : -1;
    o.complete_q = s.failed ? -1 : s.comp;
    o.online_share = s.online / p.window_len;
    o.balance_end = s.balance + s.unpaid;
    return o;
}

}  // namespace portopt
