"""A two-layer fully-connected neural network (one hidden layer), Problem Set 4.

Adapted from the Stanford CS231n two-layer net.
"""
import numpy as np
import matplotlib.pyplot as plt  # noqa: F401  (the handout's file imports it; kept for parity)


class TwoLayerMLP(object):
    """
    A two-layer fully-connected neural network. The net has an input dimension of
    D, a hidden layer dimension of H, and performs classification over C classes.
    We train the network with a softmax loss function and L2 regularization on the
    weight matrices. The network uses a sigmoid or ReLU nonlinearity after the first
    fully connected layer.

    In other words, the network has the following architecture:

    input - fully connected layer - sigmoid/ReLU - fully connected layer - softmax

    The outputs of the second fully-connected layer are the scores for each class.
    """

    def __init__(self, input_size, hidden_size, output_size, std=1e-4, activation='relu'):
        """
        Initialize the model. Weights are initialized to small random values and
        biases are initialized to zero. Weights and biases are stored in the
        variable self.params, which is a dictionary with the following keys:

        W1: First layer weights; has shape (D, H)
        b1: First layer biases; has shape (H,)
        W2: Second layer weights; has shape (H, C)
        b2: Second layer biases; has shape (C,)

        Inputs:
        - input_size: The dimension D of the input data.
        - hidden_size: The number of neurons H in the hidden layer.
        - output_size: The number of classes C.
        - std: Scale of the random initial weights.
        - activation: 'sigmoid' or 'relu', the hidden-layer nonlinearity.
        """
        self.params = {}
        self.params['W1'] = std * np.random.randn(input_size, hidden_size)
        self.params['b1'] = np.zeros(hidden_size)
        self.params['W2'] = std * np.random.randn(hidden_size, output_size)
        self.params['b2'] = np.zeros(output_size)
        self.activation = activation

    def loss(self, X, y=None, reg=0.0):
        """
        Compute the loss and gradients for a two layer fully connected neural
        network.

        Inputs:
        - X: Input data of shape (N, D). Each X[i] is a training sample.
        - y: Vector of training labels. y[i] is the label for X[i], and each y[i] is
          an integer in the range 0 <= y[i] < C. This parameter is optional; if it
          is not passed then we only return scores, and if it is passed then we
          instead return the loss and gradients.
        - reg: Regularization strength.

        Returns:
        If y is None, return a matrix scores of shape (N, C) where scores[i, c] is
        the score for class c on input X[i].

        If y is not None, instead return a tuple of:
        - loss: Loss (data loss and regularization loss) for this batch of training
          samples.
        - grads: Dictionary mapping parameter names to gradients of those parameters
          with respect to the loss function; has the same keys as self.params.
        """
        W1, b1 = self.params['W1'], self.params['b1']
        W2, b2 = self.params['W2'], self.params['b2']
        N, D = X.shape

        # Forward pass: compute the hidden layer h1 = f(X W1 + b1) and the class
        # scores h1 W2 + b2, of shape (N, C). The scores are the raw logits: no
        # nonlinearity is applied to the output layer.
        if self.activation == 'sigmoid':
            # BEGIN SOLUTION: hidden layer with sigmoid activation (h1 from X, W1, b1)
            a1 = X.dot(W1) + b1
            # exp(-a1) overflows to inf for very negative a1 (unscaled MNIST pixels);
            # 1 / (1 + inf) = 0 is the correct limit, so the warning is only noise.
            with np.errstate(over='ignore'):
                h1 = 1.0 / (1.0 + np.exp(-a1))
            # END SOLUTION
        elif self.activation == 'relu':
            # BEGIN SOLUTION: hidden layer with ReLU activation (h1 from X, W1, b1)
            a1 = X.dot(W1) + b1
            h1 = np.maximum(0, a1)
            # END SOLUTION
        else:
            raise ValueError('Unknown activation type: %r' % (self.activation,))

        # BEGIN SOLUTION: class scores (N, C) from the hidden layer h1
        scores = h1.dot(W2) + b2
        # END SOLUTION

        # If the targets are not given then jump out, we're done
        if y is None:
            return scores

        # Compute the loss: softmax cross-entropy averaged over the N samples, plus
        # L2 regularization 0.5 * reg * (sum(W1**2) + sum(W2**2)). Subtract the
        # row-wise maximum from the scores before exponentiating (log-sum-exp trick).
        # BEGIN SOLUTION: softmax cross-entropy loss (averaged over N) plus L2 regularization
        shifted = scores - np.max(scores, axis=1, keepdims=True)
        log_probs = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
        probs = np.exp(log_probs)
        data_loss = -np.mean(log_probs[np.arange(N), y])
        reg_loss = 0.5 * reg * (np.sum(W1 * W1) + np.sum(W2 * W2))
        loss = data_loss + reg_loss
        # END SOLUTION

        # Backward pass: compute the gradients of the loss with respect to W1, b1,
        # W2 and b2 and store them in grads (the gradient of each W includes reg * W).
        grads = {}
        # BEGIN SOLUTION: backward pass, gradients of W1, b1, W2, b2 for both activations
        # Gradient of the averaged softmax cross-entropy w.r.t. the scores.
        dscores = probs.copy()
        dscores[np.arange(N), y] -= 1
        dscores /= N

        grads['W2'] = h1.T.dot(dscores) + reg * W2
        grads['b2'] = np.sum(dscores, axis=0)

        dh1 = dscores.dot(W2.T)
        if self.activation == 'sigmoid':
            # sigmoid'(a) = sigmoid(a) * (1 - sigmoid(a)), reusing the forward values
            da1 = dh1 * h1 * (1 - h1)
        else:
            # ReLU passes the gradient only where the unit was active
            da1 = dh1 * (a1 > 0)

        grads['W1'] = X.T.dot(da1) + reg * W1
        grads['b1'] = np.sum(da1, axis=0)
        # END SOLUTION

        return loss, grads

    def train(self, X, y, X_val, y_val,
              learning_rate=1e-3, learning_rate_decay=0.95,
              reg=1e-5, num_epochs=10,
              batch_size=200, verbose=False):
        """
        Train this neural network using stochastic gradient descent.

        Inputs:
        - X: A numpy array of shape (N, D) giving training data.
        - y: A numpy array of shape (N,) giving training labels; y[i] = c means that
          X[i] has label c, where 0 <= c < C.
        - X_val: A numpy array of shape (N_val, D) giving validation data.
        - y_val: A numpy array of shape (N_val,) giving validation labels.
        - learning_rate: Scalar giving learning rate for optimization.
        - learning_rate_decay: Scalar giving factor used to decay the learning rate
          after each epoch.
        - reg: Scalar giving regularization strength.
        - num_epochs: Number of epochs (passes over the training data).
        - batch_size: Number of training examples to use per step.
        - verbose: boolean; if true print progress during optimization.

        Returns a dict with
        - loss_history: minibatch loss, one entry per iteration;
        - grad_magnitude_history: Frobenius norm of the gradient of W1, per iteration;
        - train_acc_history: accuracy on the epoch's last minibatch, per epoch;
        - val_acc_history: accuracy on the validation set, per epoch.
        """
        num_train = X.shape[0]
        iterations_per_epoch = max(num_train // batch_size, 1)
        # Fixed seed so that the minibatch order (and thus the result) is reproducible.
        np.random.seed(1)

        # Use SGD to optimize the parameters in self.params
        loss_history = []
        grad_magnitude_history = []
        train_acc_history = []
        val_acc_history = []

        for epoch in range(1, num_epochs + 1):
            # Visit the training set in a new random order every epoch.
            perm = np.random.permutation(num_train)
            for it in range(iterations_per_epoch):
                # Take the it-th minibatch of the permutation, compute its loss and
                # gradients, record the loss and ||grad W1||_F, and update every
                # parameter with a vanilla SGD step.
                # BEGIN SOLUTION: minibatch sampling, loss/gradients, histories and SGD update
                batch_idx = perm[it * batch_size:(it + 1) * batch_size]
                X_batch = X[batch_idx]
                y_batch = y[batch_idx]

                loss, grads = self.loss(X_batch, y_batch, reg=reg)
                loss_history.append(loss)
                grad_magnitude_history.append(np.linalg.norm(grads['W1']))

                for name in self.params:
                    self.params[name] -= learning_rate * grads[name]
                # END SOLUTION

            # Every epoch, record the accuracy on the last minibatch (after its
            # update) and on the validation set.
            # BEGIN SOLUTION: per-epoch train (last minibatch) and validation accuracy
            train_acc_history.append(np.mean(self.predict(X_batch) == y_batch))
            val_acc_history.append(np.mean(self.predict(X_val) == y_val))
            # END SOLUTION

            if verbose:
                print('Epoch %d: loss %f, train_acc %f, val_acc %f' % (
                    epoch, loss_history[-1], train_acc_history[-1], val_acc_history[-1]))

            # Decay learning rate
            learning_rate *= learning_rate_decay

        return {
            'loss_history': loss_history,
            'grad_magnitude_history': grad_magnitude_history,
            'train_acc_history': train_acc_history,
            'val_acc_history': val_acc_history,
        }

    def predict(self, X):
        """
        Use the trained weights of this two-layer network to predict labels for
        data points. For each data point we predict scores for each of the C
        classes, and assign each data point to the class with the highest score.

        Inputs:
        - X: A numpy array of shape (N, D) giving N D-dimensional data points to
          classify.

        Returns:
        - y_pred: A numpy array of shape (N,) giving predicted labels for each of
          the elements of X. For all i, y_pred[i] = c means that X[i] is predicted
          to have class c, where 0 <= c < C.
        """
        # BEGIN SOLUTION: predict the labels of X (argmax of the class scores)
        scores = self.loss(X)
        y_pred = np.argmax(scores, axis=1)
        # END SOLUTION
        return y_pred
