/* ddpm: entry point. Parses the subcommand and hands over; nothing else lives here. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "ops/cpu.h"

#define DDPM_VERSION "0.1.0"

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
            "  bench      measure training throughput (images per second)\n"
            "  data       data fetch: download and verify the official MNIST files\n"
            "\n"
            "Data: --data DIR, else $DDPM_DATA, else ./data/mnist.\n",
            DDPM_VERSION);
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
        printf("ddpm %s\n", DDPM_VERSION);
        return 0;
    }
    ops_cpu_init();
    if (strcmp(cmd, "train") == 0) return cmd_train(argc, argv);
    if (strcmp(cmd, "sample") == 0) return cmd_sample(argc, argv);
    if (strcmp(cmd, "denoise") == 0) return cmd_denoise(argc, argv);
    if (strcmp(cmd, "eval") == 0) return cmd_eval(argc, argv);
    if (strcmp(cmd, "bench") == 0) return cmd_bench(argc, argv);
    if (strcmp(cmd, "reproduce") == 0) return cmd_reproduce(argc, argv);
    if (strcmp(cmd, "data") == 0) return cmd_data(argc, argv);
    fprintf(stderr, "ddpm: unknown command '%s' (try ddpm --help)\n", cmd);
    return 2;
}
