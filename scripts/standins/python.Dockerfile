# Test stand-in for python:<version>-slim-bookworm (scripts/standin-images): Debian bookworm's own
# CPython on a debootstrap rootfs, with `python` and `python3` on PATH as in the official image.
FROM scratch
ADD rootfs.tar /
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
CMD ["python3"]
