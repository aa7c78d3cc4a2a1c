// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11; the
// Random123 reference) and the uniforms and normals of docs/scenario-model.md.
//
// Plain __host__ __device__ C++: the same source runs in the CUDA kernel and in the host build
// (kernels/host_check.cu) that CI checks against the NumPy engine. The transcendental functions
// are the double-precision log, sqrt, cos and sin, never sincospi or fast-math intrinsics, so
// both builds stay within a few ulp of NumPy.
#pragma once

#ifndef PORTOPT_HD
#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define PORTOPT_HD __host__ __device__ __forceinline__
#else
#define PORTOPT_HD inline
#endif
#endif

#if !defined(__CUDACC_RTC__)
#include <cmath>
#include <cstdint>
#endif

namespace portopt {

#if defined(__CUDACC_RTC__)
typedef unsigned int u32;
typedef unsigned long long u64;
#else
typedef std::uint32_t u32;
typedef std::uint64_t u64;
#endif

struct U4 {
    u32 x0, x1, x2, x3;
};

struct Double2 {
    double a, b;
};

PORTOPT_HD void mulhilo32(u32 a, u32 b, u32* hi, u32* lo) {
    const u64 p = static_cast<u64>(a) * static_cast<u64>(b);
    *hi = static_cast<u32>(p >> 32);
    *lo = static_cast<u32>(p);
}

// One Philox4x32 round, then the 9 key bumps between the 10 rounds (Random123's philox4x32_R).
PORTOPT_HD U4 philox4x32_10(U4 c, u32 k0, u32 k1) {
    const u32 M0 = 0xD2511F53u, M1 = 0xCD9E8D57u;
    const u32 W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
    for (int round = 0; round < 10; ++round) {
        if (round > 0) {
            k0 += W0;
            k1 += W1;
        }
        u32 hi0, lo0, hi1, lo1;
        mulhilo32(M0, c.x0, &hi0, &lo0);
        mulhilo32(M1, c.x2, &hi1, &lo1);
        const U4 n = {hi1 ^ c.x1 ^ k0, lo1, hi0 ^ c.x3 ^ k1, lo0};
        c = n;
    }
    return c;
}

// The Philox key of a 64-bit seed: (seed mod 2^32, seed div 2^32).
struct Key {
    u32 k0, k1;
};

PORTOPT_HD Key make_key(u64 seed) {
    const Key k = {static_cast<u32>(seed), static_cast<u32>(seed >> 32)};
    return k;
}

// The four words for counter (scenario, entity, quarter, purpose).
PORTOPT_HD U4 draw(Key key, u32 scenario, u32 entity, u32 quarter, u32 purpose) {
    const U4 c = {scenario, entity, quarter, purpose};
    return philox4x32_10(c, key.k0, key.k1);
}

// 53-bit uniform strictly inside (0, 1):  ((hi >> 5) 2^26 + (lo >> 6) + 0.5) 2^-53.
// The integer part is exact in a double; the + 0.5 rounds the same way as NumPy's float64 add.
PORTOPT_HD double uniform53(u32 hi, u32 lo) {
    const double top = static_cast<double>(hi >> 5) * 67108864.0;  // 2^26
    return (top + static_cast<double>(lo >> 6) + 0.5) * 1.1102230246251565e-16;  // 2^-53
}

// ua from (x0, x1), ub from (x2, x3).
PORTOPT_HD Double2 uniforms(U4 x) {
    const Double2 u = {uniform53(x.x0, x.x1), uniform53(x.x2, x.x3)};
    return u;
}

// Box-Muller: r = sqrt(-2 ln ua), z0 = r cos(2 pi ub), z1 = r sin(2 pi ub), 2 pi written as the
// double 6.283185307179586 (the NumPy engine multiplies by the same constant).
PORTOPT_HD Double2 normals(U4 x) {
    const Double2 u = uniforms(x);
    const double r = sqrt(-2.0 * log(u.a));
    const double angle = 6.283185307179586 * u.b;
    const Double2 z = {r * cos(angle), r * sin(angle)};
    return z;
}

}  // namespace portopt
