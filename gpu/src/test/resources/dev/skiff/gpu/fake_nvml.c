/*
 * An NVML stand-in for tests on hosts without a GPU: the entry points Skiff's binding calls, with
 * the C signatures and struct layouts of nvml.h, answering for two GPUs (an H100 and a 40 GB A100
 * with MIG on). Built by NvmlTest with the host's cc.
 */
#include <string.h>

typedef struct { int index; } dev_t_;
static dev_t_ devices[2] = {{0}, {1}};
static int initialised;

int nvmlInit_v2(void) { initialised = 1; return 0; }
int nvmlShutdown(void) { initialised = 0; return 0; }
const char *nvmlErrorString(int r) { return r == 1 ? "Uninitialized" : "Unknown Error"; }

int nvmlSystemGetDriverVersion(char *v, unsigned int n) {
  if (!initialised) return 1;
  strncpy(v, "550.90.07", n);
  return 0;
}
int nvmlSystemGetCudaDriverVersion_v2(int *v) { *v = 12040; return 0; }
int nvmlDeviceGetCount_v2(unsigned int *n) { if (!initialised) return 1; *n = 2; return 0; }
int nvmlDeviceGetHandleByIndex_v2(unsigned int i, void **d) {
  if (i > 1) return 2;
  *d = &devices[i];
  return 0;
}
int nvmlDeviceGetName(void *d, char *name, unsigned int n) {
  strncpy(name, ((dev_t_ *)d)->index == 0 ? "NVIDIA H100 80GB HBM3" : "NVIDIA A100-SXM4-40GB", n);
  return 0;
}
int nvmlDeviceGetUUID(void *d, char *uuid, unsigned int n) {
  strncpy(uuid, ((dev_t_ *)d)->index == 0 ? "GPU-11111111-2222-3333-4444-555555555555"
                                          : "GPU-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", n);
  return 0;
}
int nvmlDeviceGetMinorNumber(void *d, unsigned int *m) { *m = ((dev_t_ *)d)->index == 0 ? 3 : 7; return 0; }
typedef struct { unsigned long long total, free, used; } mem_t;
int nvmlDeviceGetMemoryInfo(void *d, mem_t *m) {
  m->total = ((dev_t_ *)d)->index == 0 ? 81559ULL << 20 : 40960ULL << 20;
  m->used = 1024ULL << 20;
  m->free = m->total - m->used;
  return 0;
}
typedef struct { unsigned int gpu, memory; } util_t;
int nvmlDeviceGetUtilizationRates(void *d, util_t *u) { u->gpu = 42; u->memory = 7; return 0; }
int nvmlDeviceGetTemperature(void *d, int sensor, unsigned int *t) { *t = sensor == 0 ? 61 : 0; return 0; }
int nvmlDeviceGetPowerUsage(void *d, unsigned int *mw) { *mw = 312500; return 0; }
int nvmlDeviceGetMigMode(void *d, unsigned int *cur, unsigned int *pend) {
  if (((dev_t_ *)d)->index == 0) return 3; /* not supported on this one */
  *cur = 1; *pend = 1;
  return 0;
}
