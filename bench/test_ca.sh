# Sourced by the bench scripts that put the mock behind TLS (run.sh, instructions.sh and
# prewarm.sh with TLS): a throwaway CA and an RSA-2048 certificate for localhost (and
# 127.0.0.1) signed by it, written to DIR as ca.pem, server.pem and server-key.pem.
#   make_test_ca DIR   (fails when openssl does)
make_test_ca() {
    (
        cd "$1"
        openssl req -x509 -newkey rsa:2048 -nodes -keyout ca-key.pem -out ca.pem -days 2 \
            -subj "/CN=michi bench CA" >/dev/null 2>&1
        openssl req -newkey rsa:2048 -nodes -keyout server-key.pem -out server.csr \
            -subj "/CN=localhost" >/dev/null 2>&1
        printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' >ext.cnf
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial \
            -out server.pem -days 2 -extfile ext.cnf >/dev/null 2>&1
    )
}
