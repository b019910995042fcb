// The float32 skinny matmul's register blocking with 512-bit (zmm) and 256-bit (ymm) vectors,
// the same loop nest otherwise (4 weight rows x up to 6 input rows, C in chunks of 256, weight
// rows prefetched into L2 two blocks ahead), on SmolLM2's shapes at 1 and 9 rows, 2 threads,
// weights cycled through 160 MB of copies. A throwaway question, kept with its answer in
// ../README.md: on a CPU whose zmm FMAs issue at half the ymm rate, would ymm verify faster?
//
//   gcc -O3 -march=native -fopenmp -o /tmp/zmm-ymm Experiments/kernels/ab/zmm-vs-ymm.c && /tmp/zmm-ymm
//
// Prints per shape the µs of a call at N = 1 and 9 for each width, and ymm's N = 9 time over zmm's.
// It also times the raw FMA rate of each width (12 independent chains in registers).
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <omp.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
#define KCH 256
#define MAXNB 6
static inline __attribute__((always_inline)) void blk512(float*out,const float*in,const float*w,long c,long oc,long k0,long k1,__m512*park,int first,int last,const float*pf,int pfn,int NB){
  const float*w0=w,*w1=w+c,*w2=w+2*c,*w3=w+3*c; __m512 acc[4][MAXNB];
  for(int j=0;j<NB;j++)for(int r=0;r<4;r++)acc[r][j]=first?_mm512_setzero_ps():park[j*4+r];
  for(long k=k0;k+16<=k1;k+=16){
    for(int p=0;p<pfn;p++)_mm_prefetch((const char*)(pf+(k*pfn+16*p)),_MM_HINT_T1);
    __m512 a0=_mm512_loadu_ps(w0+k),a1=_mm512_loadu_ps(w1+k),a2=_mm512_loadu_ps(w2+k),a3=_mm512_loadu_ps(w3+k);
    for(int j=0;j<NB;j++){__m512 x=_mm512_loadu_ps(in+j*c+k);
      acc[0][j]=_mm512_fmadd_ps(a0,x,acc[0][j]);acc[1][j]=_mm512_fmadd_ps(a1,x,acc[1][j]);
      acc[2][j]=_mm512_fmadd_ps(a2,x,acc[2][j]);acc[3][j]=_mm512_fmadd_ps(a3,x,acc[3][j]);}
  }
  if(!last){for(int j=0;j<NB;j++)for(int r=0;r<4;r++)park[j*4+r]=acc[r][j];return;}
  for(int j=0;j<NB;j++)for(int r=0;r<4;r++)out[j*oc+r]=_mm512_reduce_add_ps(acc[r][j]);
}
static inline float hsum256(__m256 v){__m128 s=_mm_add_ps(_mm256_castps256_ps128(v),_mm256_extractf128_ps(v,1));s=_mm_hadd_ps(s,s);s=_mm_hadd_ps(s,s);return _mm_cvtss_f32(s);}
static inline __attribute__((always_inline)) void blk256(float*out,const float*in,const float*w,long c,long oc,long k0,long k1,__m256*park,int first,int last,const float*pf,int pfn,int NB){
  const float*w0=w,*w1=w+c,*w2=w+2*c,*w3=w+3*c; __m256 acc[4][MAXNB];
  for(int j=0;j<NB;j++)for(int r=0;r<4;r++)acc[r][j]=first?_mm256_setzero_ps():park[j*4+r];
  for(long k=k0;k+8<=k1;k+=8){
    if(((k-k0)&15)==0)for(int p=0;p<pfn;p++)_mm_prefetch((const char*)(pf+(k*pfn+16*p)),_MM_HINT_T1);
    __m256 a0=_mm256_loadu_ps(w0+k),a1=_mm256_loadu_ps(w1+k),a2=_mm256_loadu_ps(w2+k),a3=_mm256_loadu_ps(w3+k);
    for(int j=0;j<NB;j++){__m256 x=_mm256_loadu_ps(in+j*c+k);
      acc[0][j]=_mm256_fmadd_ps(a0,x,acc[0][j]);acc[1][j]=_mm256_fmadd_ps(a1,x,acc[1][j]);
      acc[2][j]=_mm256_fmadd_ps(a2,x,acc[2][j]);acc[3][j]=_mm256_fmadd_ps(a3,x,acc[3][j]);}
  }
  if(!last){for(int j=0;j<NB;j++)for(int r=0;r<4;r++)park[j*4+r]=acc[r][j];return;}
  for(int j=0;j<NB;j++)for(int r=0;r<4;r++)out[j*oc+r]=hsum256(acc[r][j]);
}
typedef void(*blkfn)(void);
static void rows(int wide,float*out,const float*in,const float*w,long n,long c,long oc,long o0,long o1){
  __m512 park5[MAXNB*4*2]; __m256 park2[MAXNB*4*2];
  long blocks=(n+MAXNB-1)/MAXNB; int pfn=(int)((4+blocks-1)/blocks);
  for(long o=o0;o<o1;o+=4){const float*wr=w+o*c;
    for(long k0=0,k1;k0<c;k0=k1){k1=c-k0<=KCH+KCH/2?c:k0+KCH;int first=k0==0,last=k1==c;long j0=0;
      for(long b=0;b<blocks;b++){long j1=n*(b+1)/blocks;const float*pf=wr+2*4*c+b*pfn*c;
#define CALL(F,P,NB) F(out+j0*oc+o,in+j0*c,wr,c,oc,k0,k1,P+b*MAXNB*4,first,last,pf,pfn,NB)
        int nb=(int)(j1-j0);
        if(wide){switch(nb){case 1:CALL(blk512,park5,1);break;case 2:CALL(blk512,park5,2);break;case 3:CALL(blk512,park5,3);break;case 4:CALL(blk512,park5,4);break;case 5:CALL(blk512,park5,5);break;default:CALL(blk512,park5,6);}}
        else{switch(nb){case 1:CALL(blk256,park2,1);break;case 2:CALL(blk256,park2,2);break;case 3:CALL(blk256,park2,3);break;case 4:CALL(blk256,park2,4);break;case 5:CALL(blk256,park2,5);break;default:CALL(blk256,park2,6);}}
        j0=j1;}}}
}
static void fma_rates(void){
  long n=100000000;
  __m512 a[12]; __m512 x=_mm512_set1_ps(1.0000001f), y=_mm512_set1_ps(0.9999999f);
  for(int i=0;i<12;i++) a[i]=_mm512_set1_ps(i);
  double t0=now();
  for(long k=0;k<n;k++){
    for(int i=0;i<12;i++) a[i]=_mm512_fmadd_ps(a[i],x,y);
    __asm__ volatile("" : "+v"(a[0]),"+v"(a[1]),"+v"(a[2]),"+v"(a[3]),"+v"(a[4]),"+v"(a[5]),"+v"(a[6]),"+v"(a[7]),"+v"(a[8]),"+v"(a[9]),"+v"(a[10]),"+v"(a[11]));
  }
  double t1=now();
  __m256 b[12]; __m256 x2=_mm256_set1_ps(1.0000001f), y2=_mm256_set1_ps(0.9999999f);
  for(int i=0;i<12;i++) b[i]=_mm256_set1_ps(i);
  double t2=now();
  for(long k=0;k<n;k++){
    for(int i=0;i<12;i++) b[i]=_mm256_fmadd_ps(b[i],x2,y2);
    __asm__ volatile("" : "+v"(b[0]),"+v"(b[1]),"+v"(b[2]),"+v"(b[3]),"+v"(b[4]),"+v"(b[5]),"+v"(b[6]),"+v"(b[7]),"+v"(b[8]),"+v"(b[9]),"+v"(b[10]),"+v"(b[11]));
  }
  double t3=now();
  float s=0; for(int i=0;i<12;i++){ s+=_mm512_reduce_add_ps(a[i]); float tmp[8]; _mm256_storeu_ps(tmp,b[i]); s+=tmp[0];}
  printf("raw FMA rate, one thread: zmm %.2f FMA/ns (%.1f lanes/ns), ymm %.2f FMA/ns (%.1f lanes/ns)%s\n",
         12.0*n/(t1-t0)/1e9, 16*12.0*n/(t1-t0)/1e9, 12.0*n/(t3-t2)/1e9, 8*12.0*n/(t3-t2)/1e9, s==0?" ":"");
}
int main(int argc,char**argv){
  fma_rates();
  long shapes[][2]={{576,576},{192,576},{1536,576},{576,1536},{49152,576}}; const char*names[]={"q/o","k/v","gate/up","down","head"};
  long mult[]={2,2,2,1,1}; // per layer count weights: q,o ; k,v ; gate,up ; down ; head(once)
  size_t pool=160u<<20; float*buf=aligned_alloc(64,pool+ (200u<<20)); for(size_t i=0;i<(pool+(200u<<20))/4;i++)buf[i]=(float)((i*2654435761u)%1000)/1000.f-0.5f;
  float in[16*1536]; for(int i=0;i<16*1536;i++)in[i]=(float)(i%97)/97.f; float*out=aligned_alloc(64,16*49152*4);
  int ns[]={1,9};
  for(int s=0;s<5;s++){long oc=shapes[s][0],c=shapes[s][1];size_t sz=oc*c; long copies=pool/(sz*4); if(copies<1)copies=1;
    double t[2][2]={{0}};
    for(int rep=0;rep<6;rep++)for(int wide=1;wide>=0;wide--)for(int ni=0;ni<2;ni++){int n=ns[ni];
      int iters=s==4?20:400; double t0=now();
      for(int it=0;it<iters;it++){const float*w=buf+(it%copies)*sz;
        #pragma omp parallel num_threads(2)
        {int tid=omp_get_thread_num();long half=((oc/2)+15)/16*16;long o0=tid?half:0,o1=tid?oc:half;rows(wide,out,in,w,n,c,oc,o0,o1);}
      }
      double dt=(now()-t0)/iters*1e6; if(rep>0){ if(t[wide][ni]==0||dt<t[wide][ni]) t[wide][ni]=dt; } }
    printf("%-8s zmm: N=1 %8.1f us N=9 %8.1f (%.2f) | ymm: N=1 %8.1f N=9 %8.1f (%.2f) | ymm/zmm N=9 %.2f\n",names[s],t[1][0],t[1][1],t[1][1]/t[1][0],t[0][0],t[0][1],t[0][1]/t[0][0],t[0][1]/t[1][1]);
  }
}
