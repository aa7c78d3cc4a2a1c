// Host build of the scenario kernel's per-thread body, for CI machines without a GPU.
//
//   nvcc -std=c++17 -o host_check kernels/host_check.cu
//   host_check kat < research/philox-kat.txt     Philox4x32-10 of each "philox4x32 10 c0 c1 c2
//                                                c3 k0 k1 ..." line: "c0 c1 c2 c3 k0 k1 r0 r1 r2
//                                                r3" in hex
//   host_check run INPUT OUTPUT                  simulate the scenarios INPUT names
//
// INPUT (written by tests/test_kernels.py from portopt.engine.cupy_engine.pack_inputs): blocks of
// "NAME COUNT" followed by COUNT numbers, for pf, pi, centity, exposed, sc, ic (the buffers of
// kernels/scenario_body.cuh), "range" (first, n) and optionally "weights". OUTPUT: the same
// format, one block per output field (ScenarioSet's names), (scenario, project) row-major.
//
// Each scenario runs exactly as a block of kernels/scenario.cu runs it (shocks per quarter,
// the recursion, chokepoints, then each project over the quarters), serially; the portfolio
// cash is summed in increasing project order, as the NumPy engine sums it.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "scenario_body.cuh"

using portopt::u32;

namespace {

struct Input {
    std::map<std::string, std::vector<double>> values;  // every number read as a double
};

bool read_input(const char* path, Input* in) {
    FILE* f = std::fopen(path, "r");
    if (!f) return false;
    char name[64];
    long count = 0;
    while (std::fscanf(f, "%63s %ld", name, &count) == 2) {
        std::vector<double>& v = in->values[name];
        v.resize(static_cast<size_t>(count));
        for (long j = 0; j < count; ++j) {
            char word[64];
            if (std::fscanf(f, "%63s", word) != 1) {
                std::fclose(f);
                return false;
            }
            v[static_cast<size_t>(j)] = std::strtod(word, nullptr);  // correctly rounded
        }
    }
    std::fclose(f);
    return true;
}

template <typename T>
std::vector<T> as(const std::vector<double>& v) {
    std::vector<T> out(v.size());
    for (size_t j = 0; j < v.size(); ++j) out[j] = static_cast<T>(static_cast<long long>(v[j]));
    return out;
}

void write_doubles(FILE* f, const char* name, const std::vector<double>& v) {
    std::fprintf(f, "%s %zu\n", name, v.size());
    for (double x : v) std::fprintf(f, "%.17g\n", x);
}

void write_ints(FILE* f, const char* name, const std::vector<int>& v) {
    std::fprintf(f, "%s %zu\n", name, v.size());
    for (int x : v) std::fprintf(f, "%d\n", x);
}

int kat() {
    char line[512];
    while (std::fgets(line, sizeof line, stdin)) {
        unsigned c[4], k[2];
        if (std::sscanf(line, "philox4x32 10 %x %x %x %x %x %x", &c[0], &c[1], &c[2], &c[3], &k[0],
                        &k[1]) != 6)
            continue;
        const portopt::U4 ctr = {c[0], c[1], c[2], c[3]};
        const portopt::U4 r = portopt::philox4x32_10(ctr, k[0], k[1]);
        std::printf("%08x %08x %08x %08x %08x %08x %08x %08x %08x %08x\n", c[0], c[1], c[2], c[3],
                    k[0], k[1], r.x0, r.x1, r.x2, r.x3);
    }
    return 0;
}

int run(const char* input, const char* output) {
    Input in;
    if (!read_input(input, &in)) {
        std::fprintf(stderr, "host_check: cannot read %s\n", input);
        return 2;
    }
    const char* need[] = {"pf", "pi", "centity", "exposed", "sc", "ic", "range"};
    for (const char* name : need)
        if (!in.values.count(name)) {
            std::fprintf(stderr, "host_check: %s has no block '%s'\n", input, name);
            return 2;
        }
    const std::vector<double>& pf = in.values["pf"];
    const std::vector<int> pi = as<int>(in.values["pi"]);  // uint32 entities arrive as their
    const std::vector<u32> centity = as<u32>(in.values["centity"]);  // int32 bit patterns
    const std::vector<double>& exposed = in.values["exposed"];
    const std::vector<double>& sc = in.values["sc"];
    const std::vector<int> ic = as<int>(in.values["ic"]);
    const u32 first = static_cast<u32>(in.values["range"][0]);
    const int n = static_cast<int>(in.values["range"][1]);
    const bool cash = in.values.count("weights") > 0;
    const std::vector<double> weights = cash ? in.values["weights"] : std::vector<double>();

    const portopt::Params p = portopt::make_params(pf.data(), pi.data(), centity.data(),
                                                   exposed.data(), sc.data(), ic.data());
    const size_t np = static_cast<size_t>(n) * p.P;
    std::vector<double> pv_draw(np), pv_japan(np), pv_us(np), online(np), balance(np),
        pv_floor(np);
    std::vector<int> recoup(np), complete(np), episodes(n);
    std::vector<double> stress(static_cast<size_t>(n) * p.C), share(n);
    const size_t nh = cash ? static_cast<size_t>(n) * p.H : 0;
    std::vector<double> cash_japan(nh), cash_us(nh), cash_draw(nh);
    std::vector<double> path(static_cast<size_t>(p.H) * portopt::PATH_STRIDE), ub(p.H);

    for (int b = 0; b < n; ++b) {
        const u32 scenario = first + static_cast<u32>(b);
        for (int t = 0; t < p.H; ++t)
            portopt::market_shocks(p, scenario, t, &path[t * portopt::PATH_STRIDE], &ub[t]);
        const portopt::ScenarioDraws draws = portopt::scenario_draws(p, scenario);
        for (int j = 0; j <= portopt::CHAIN_INFLATION; ++j) portopt::market_chain(p, path.data(), j);
        const portopt::MarketSummary m = portopt::coercion_chain(p, path.data(), ub.data());
        for (int t = 0; t < p.H; ++t) portopt::add_jumps(p, &path[t * portopt::PATH_STRIDE]);
        share[b] = m.coercion_share;
        episodes[b] = m.episodes;
        for (int k = 0; k < p.C; ++k)
            stress[static_cast<size_t>(b) * p.C + k] =
                portopt::chokepoint_stress(p, scenario, k, m.coercion_share);
        for (int i = 0; i < p.P; ++i) {
            portopt::Project s = portopt::project_setup(p, scenario, i, draws);
            for (int t = 0; t < p.H; ++t) {
                const portopt::QuarterCash q =
                    portopt::project_quarter(p, s, t, &path[t * portopt::PATH_STRIDE]);
                if (cash) {
                    const size_t at = static_cast<size_t>(b) * p.H + t;
                    cash_japan[at] += weights[i] * q.japan;
                    cash_us[at] += weights[i] * q.us;
                    cash_draw[at] += weights[i] * q.draw;
                }
            }
            const portopt::ProjectOut o = portopt::project_finish(p, s);
            const size_t at = static_cast<size_t>(b) * p.P + i;
            pv_draw[at] = o.pv_draw;
            pv_japan[at] = o.pv_japan;
            pv_us[at] = o.pv_us;
            recoup[at] = o.recoup_q;
            complete[at] = o.complete_q;
            online[at] = o.online_share;
            balance[at] = o.balance_end;
            pv_floor[at] = o.pv_floor;
        }
    }

    FILE* f = std::fopen(output, "w");
    if (!f) {
        std::fprintf(stderr, "host_check: cannot write %s\n", output);
        return 2;
    }
    write_doubles(f, "pv_draw", pv_draw);
    write_doubles(f, "pv_japan", pv_japan);
    write_doubles(f, "pv_us", pv_us);
    write_ints(f, "recoup_q", recoup);
    write_ints(f, "complete_q", complete);
    write_doubles(f, "online_share", online);
    write_doubles(f, "balance_end", balance);
    write_doubles(f, "pv_floor", pv_floor);
    write_doubles(f, "stress", stress);
    write_doubles(f, "coercion_share", share);
    write_ints(f, "coercion_episodes", episodes);
    if (cash) {
        write_doubles(f, "cash_japan", cash_japan);
        write_doubles(f, "cash_us", cash_us);
        write_doubles(f, "cash_draw", cash_draw);
    }
    std::fclose(f);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc == 2 && std::strcmp(argv[1], "kat") == 0) return kat();
    if (argc == 4 && std::strcmp(argv[1], "run") == 0) return run(argv[2], argv[3]);
    std::fprintf(stderr, "usage: host_check kat < KAT_FILE | host_check run INPUT OUTPUT\n");
    return 2;
}
