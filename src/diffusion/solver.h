/* The DPM-Solver++ family (Lu et al. 2022, "DPM-Solver++: Fast Solver for Guided Sampling of
 * Diffusion Probabilistic Models"): multistep solvers of the diffusion ODE, and of the SDE,
 * in data prediction, over K of the schedule's T timesteps. With alpha_t = sqrt(abar_t),
 * sigma_t = sqrt(1 - abar_t) and lambda_t = log(alpha_t / sigma_t), step k goes from
 * s0 = ts[k] to t = ts[k + 1] (or to the clean end, t = -1, after the last) with h =
 * lambda_t - lambda_s0, from the data predictions m0 (at s0) and m1, m2 (at the two steps
 * before it):
 *   2M     x_t = sigma_t / sigma_s0 x + phi1 (m0 + (m0 - m1) / (2 r0)),  phi1 = alpha_t (1 - e^-h)
 *   2M SDE x_t = sigma_t / sigma_s0 e^-h x + psi (m0 + (m0 - m1) / (2 r0))
 *               + sigma_t sqrt(1 - e^-2h) z,                            psi = alpha_t (1 - e^-2h)
 *   3M     x_t = sigma_t / sigma_s0 x + phi1 m0 + phi2 D1 - phi3 D2 (the paper's third order:
 *          D1, D2 the first and second divided differences of m0, m1, m2 in lambda;
 *          phi2 = alpha_t ((e^-h - 1) / h + 1), phi3 = alpha_t ((e^-h - 1 + h) / h^2 - 0.5))
 * with r0 = (lambda_s0 - lambda_s1) / h. Step k runs at order min(order, k + 1, K - k): the
 * first steps have no history yet, and the last ones lower the order as the solvers'
 * reference does for short chains; the very last step (to lambda = infinity) is first order,
 * which returns m0: the final data prediction. One network pass per step: K steps are K NFE. */
#ifndef DDPM_SOLVER_H
#define DDPM_SOLVER_H

#include <stddef.h>

#include "diffusion/schedule.h"
#include "ops/ops.h"

typedef enum { SOLVER_DPMPP_2M = 0, SOLVER_DPMPP_2M_SDE = 1, SOLVER_DPMPP_3M = 2 } SolverKind;

/* The highest order of a kind: 2 or 3. */
int solver_order(SolverKind k);

/* The coefficients of step k of K over the descending timesteps ts[0..K-1] (the step goes
 * to ts[k + 1], or to the clean image after k = K - 1); clip: the data prediction clipped to
 * [0, 1]. All in double. */
MultistepCoefs solver_coefs(const Schedule *s, SolverKind kind, const int *ts, int k, int K,
                            int clip);

/* 1 when step k draws fresh noise (the SDE solver, but for its last step). */
int solver_needs_noise(SolverKind kind, int k, int K);

/* A chain of K steps over count values: the data predictions of the last three steps live in
 * m[0..2] (the backend's memory, count floats each, owned by the caller), used in turn. */
typedef struct {
    SolverKind kind;
    int K, clip;
    const int *ts; /* (K) descending timesteps */
    float *m[3];
    size_t count;
} SolverChain;

/* Step k of the chain: x (count) advanced in place from ts[k] with the network's noise
 * prediction eps there, and fresh noise z when solver_needs_noise (else NULL). */
void solver_chain_step(const OpsCtx *ctx, const Schedule *s, const SolverChain *c, int k,
                       float *x, const float *eps, const float *z);

#endif
