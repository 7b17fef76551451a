# Data: downloads (checksummed, retried, mirror first) and the embedded, generated default data.
# Config values reach the shell quoted: MIRROR_FLAG, DOWNLOAD_FLAGS, EXTRACT_FLAGS (common.smk).


rule download_kodak:
    output:
        f"{DATA}/kodak/{{item}}.png",
    log:
        f"logs/data/kodak/{{item}}.log",
    params:
        mirror=MIRROR_FLAG,
    shell:
        "iga download --dataset kodak --item {wildcards.item} --out {output} {params.mirror}"
        " {DOWNLOAD_FLAGS} > {log} 2>&1"


rule make_embedded_image:
    output:
        f"{DATA}/embedded/images/{{item}}_{{w}}x{{h}}.png",
    log:
        f"logs/data/embedded/{{item}}_{{w}}x{{h}}.log",
    shell:
        "iga make-image --name {wildcards.item} --width {wildcards.w} --height {wildcards.h}"
        " --out {output} > {log} 2>&1"


rule fetch_lpips_weights:
    output:
        status=LPIPS_STATUS,
    log:
        "logs/data/lpips_weights.log",
    params:
        mirror=MIRROR_FLAG,
        weights=f"{DATA}/weights/alexnet-owt-7be5be79.pth",
    shell:
        "iga fetch-lpips-weights --out {params.weights} --status {output.status} {params.mirror}"
        " {DOWNLOAD_FLAGS} > {log} 2>&1"
