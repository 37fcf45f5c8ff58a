# escape=`
ARG base_image
FROM $base_image
RUN echo a `
    b
COPY ["a b", "/c d/"]
USER ${CNB_USER_ID:-1000}
