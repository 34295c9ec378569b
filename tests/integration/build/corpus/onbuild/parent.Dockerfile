FROM busybox
RUN mkdir -p /app
ONBUILD COPY app.txt /app/
ONBUILD RUN echo "triggered" > /app/trigger
ONBUILD ENV BUILT_BY_CHILD=yes
LABEL role=parent
