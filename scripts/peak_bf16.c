// The processor's bf16 dot-product peak (AVX512-BF16 vdpbf16ps), as shared/bench/peak_fma.c measures the
// FMA peak: gcc -O2 -mavx512f -mavx512bf16 -fopenmp scripts/peak_bf16.c -o /tmp/peak_bf16 && /tmp/peak_bf16
// 24 independent accumulators (12 left it latency-bound on the Xeon of 2026-12-07: 142 against 162–166 GFLOP/s).
#include <immintrin.h>
#include <stdio.h>
#include <omp.h>
#include <time.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(){
  int threads=omp_get_max_threads(); long iters=200000000L/ 8;
  double best=0;
  for(int rep=0;rep<3;rep++){
  double t0=now();
  #pragma omp parallel
  {
    __m512 acc[24]; for(int i=0;i<24;i++) acc[i]=_mm512_set1_ps(0.f);
    __m512bh a=(__m512bh)_mm512_set1_epi16(0x3f80), b=(__m512bh)_mm512_set1_epi16(0x3f80);
    for(long i=0;i<iters;i++){
      #pragma GCC unroll 24
      for(int k=0;k<24;k++) acc[k]=_mm512_dpbf16_ps(acc[k],a,b);
    }
    float s=0; for(int i=0;i<24;i++) s+=_mm512_reduce_add_ps(acc[i]);
    if(s==1.2345f) printf("x");
  }
  double t=now()-t0;
  double flops=(double)threads*iters*24*32*2; // per instruction: 16 lanes, each 2 products and 2 sums
  if(flops/t>best) best=flops/t;
  }
  printf("bf16 dot-product peak: %.1f GFLOP/s on %d threads\n", best/1e9, threads);
}
