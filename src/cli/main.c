/* ddpm: entry point. Parses the subcommand and hands over; nothing else lives here. */
#include <stdio.h>
#include <string.h>

#include "ddpm.h"

#include "cli/cli.h"
#include "core/common.h"
#include "core/dist.h"
#include "ops/cpu.h"

static void usage(FILE *f) {
    fprintf(f,
            "ddpm %s: train diffusion models on MNIST from scratch, and sample from them.\n"
            "\n"
            "Usage: ddpm <command> [options]   (ddpm <command> --help for its options)\n"
            "\n"
            "Commands:\n"
            "  train      train a model: --model denoiser (Part 1), time (Part 2), class (Part 3)\n"
            "  sample     draw samples from a trained time or class model (PNG, IDX, GIF)\n"
            "  denoise    apply a trained denoiser to test digits at several noise levels\n"
            "  eval       judge samples: FID, precision/recall, digit accuracy, diversity, memorisation\n"
            "  reproduce  the whole write-up: train Parts 1-3, sample, evaluate, write a report page\n"
            "  export     inference-only weights for shipping: BatchNorm folded, half precision\n"
            "  bench      measure training throughput (images per second)\n"
            "  data       data fetch: download and verify the official MNIST files\n"
            "\n"
            "Data: --data DIR, else $DDPM_DATA, else ./data/mnist.\n",
            DDPM_VERSION_STRING);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("ddpm %s\n", DDPM_VERSION_STRING);
        return 0;
    }
    /* train and bench run data-parallel under an MPI launcher; the rest are one process */
    int distributed = strcmp(cmd, "train") == 0 || strcmp(cmd, "bench") == 0;
    if (dist_init(&argc, &argv) != 0) {
        fprintf(stderr, "ddpm %s: %s\n", cmd, err_msg());
        return 1;
    }
    if (!distributed && dist_size() > 1) {
        if (dist_rank() == 0)
            fprintf(stderr, "ddpm %s: runs as one process (only train and bench run under "
                    "mpirun with several)\n", cmd);
        dist_finalize();
        return 2;
    }
    ops_cpu_init();
    static const struct {
        const char *name;
        int (*run)(int, char **);
        int model; /* runs a model, on the CPU convolutions unless told otherwise */
    } commands[] = {
        {"train", cmd_train, 1}, {"sample", cmd_sample, 1}, {"denoise", cmd_denoise, 1},
        {"eval", cmd_eval, 1},   {"bench", cmd_bench, 1},   {"reproduce", cmd_reproduce, 1},
        {"export", cmd_export, 0}, {"data", cmd_data, 0},
    };
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(cmd, commands[i].name) != 0) continue;
        /* the convolutions treat an unknown value as auto without a word */
        const char *conv = ops_cpu_conv_ignored();
        if (commands[i].model && conv)
            fprintf(stderr, "ddpm: ignoring DDPM_CONV=%s (expected im2col or auto)\n", conv);
        int rc = commands[i].run(argc, argv);
        /* MPI_Finalize waits for every process; after an error this one leaves at once
         * instead, and the launcher ends the others (which would only repeat the error) */
        if (rc == 0 || rc > 128 || dist_size() == 1) dist_finalize();
        return rc;
    }
    fprintf(stderr, "ddpm: unknown command '%s' (try ddpm --help)\n", cmd);
    return 2;
}
